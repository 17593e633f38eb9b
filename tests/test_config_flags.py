"""The algorithms' flags are made from their config fields: one name from flag to field to
flags.txt, each algorithm's defaults, the config's checks as flag errors, and the migration rule
for flags renamed since runs were saved."""

import dataclasses

import pytest

from experiments import cli
from experiments.app_plumbing import UsageError
from experiments.flags_file import parse_flag_lines
from metarl_jax.algos import MamlConfig, PearlConfig, Rl2Config
from metarl_jax.algos.registry import ENTRIES, algorithm_entry
from metarl_jax.algos.settings import HELP, settings_of
from metarl_jax.envs import make_env
from metarl_jax.tasks import parse_restriction

FLAGS = cli.FLAGS


@pytest.fixture
def parse():
    """Parse a command line as the app does; the flags are reset afterwards."""

    def parse_args(*args):
        FLAGS.unparse_flags()
        FLAGS(["experiments.main", *args])
        return cli.spec_from_flags()

    yield parse_args
    FLAGS.unparse_flags()


def test_every_setting_is_one_flag_of_its_name_type_and_help():
    for entry in ENTRIES:
        for field in settings_of(entry.config_class):
            flag = FLAGS[field.name]
            assert field.metadata[HELP] in flag.help
            default = flag.default
            if field.type is bool:
                assert isinstance(default, bool)
            elif field.type in (int, float):
                assert type(default) in (int, float) and not isinstance(default, bool)
            elif field.type is str:
                assert isinstance(default, str)
            else:
                assert all(int(v) > 0 for v in default)
    # a name shared with different defaults lists each algorithm's in its help
    assert "rl2_ppo 0.2" in FLAGS["clip"].help and "maml_trpo, maml_ppo 0.3" in FLAGS["clip"].help
    assert "pearl 3; macaw 10" in FLAGS["eval_episodes"].help


@pytest.mark.parametrize("algo", ["maml_trpo", "maml_ppo", "rl2_ppo", "pearl"])
def test_default_flags_build_the_default_config(parse, algo):
    """With no setting on the command line, the app's config is the config class's defaults plus
    what the app derives (horizon, tasks, largest meta-batch, PEARL's pool)."""
    spec = parse(f"--algo={algo}", "--env=navigation")
    entry = algorithm_entry(algo)
    env = make_env("navigation")
    derived = dict(
        horizon=env.horizon,
        max_meta_batch_size=int(entry.reference_defaults.get("meta_batch_size", ["20"])[0]),
        train_tasks=parse_restriction("full", env.task_space, "train_tasks"),
        eval_tasks=parse_restriction("full", env.task_space, "eval_tasks"),
        **entry.config_settings,
    )
    if algo == "pearl":
        derived["num_task_slots"] = FLAGS.task_pool_size
    assert spec.config == entry.config_class(**derived)


def test_flags_set_the_field_of_the_same_name_and_flags_txt_records_it(parse):
    spec = parse("--algo=rl2_ppo", "--outer_lr=0.002", "--hidden_sizes=32,16", "--clip=0.1")
    assert isinstance(spec.config, Rl2Config)
    assert (spec.config.outer_lr, spec.config.hidden_sizes, spec.config.clip) == (
        0.002,
        (32, 16),
        0.1,
    )
    recorded = parse_flag_lines(cli.flags_file_text().splitlines())
    assert recorded["outer_lr"] == "0.002" and recorded["hidden_sizes"] == "32,16"
    spec = parse("--algo=pearl", "--sac_lr=0.001", "--exploration=uniform_actions")
    assert isinstance(spec.config, PearlConfig)
    assert (spec.config.sac_lr, spec.config.exploration) == (0.001, "uniform_actions")


def test_an_unset_flag_takes_the_algorithms_default(parse):
    assert parse("--algo=rl2_ppo").config.clip == Rl2Config().clip == 0.2
    assert parse("--algo=maml_ppo").config.clip == MamlConfig().clip == 0.3
    assert parse("--algo=rl2_ppo").config.hidden_sizes == (64,)
    assert "--clip=0.2" in cli.flags_file_text().splitlines()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--algo=rl2_ppo", "--clip=0"), "--clip: 0.0 must be positive"),
        (("--algo=pearl", "--grad_steps=0"), "--grad_steps: 0 must be positive"),
        (("--algo=maml_trpo", "--inner_steps=9"), "--inner_steps: 9 must be in [1, 5]"),
        (("--algo=maml_trpo", "--activation=gelu2"), "--activation: 'gelu2' must be one of"),
        (("--algo=pearl", "--exploration=greedy"), "--exploration: 'greedy' must be one of"),
        (("--algo=maml_trpo", "--hidden_sizes=8,x"), "--hidden_sizes: 'x' is not an integer"),
    ],
)
def test_a_config_check_is_a_one_line_flag_error(parse, args, message):
    with pytest.raises(UsageError) as error:
        parse(*args)
    assert str(error.value).startswith(message)


def test_pearls_pool_flag_sizes_its_slots(parse):
    """--task_pool_size is what 'all' stands for; the config's num_task_slots is the pool the
    sweep needs: the largest k, or that size for 'all'."""
    assert parse("--algo=pearl", "--num_train_tasks=2,5").config.num_task_slots == 5
    spec = parse("--algo=pearl", "--num_train_tasks=2,all", "--task_pool_size=7")
    assert spec.config.num_task_slots == 7
    assert "--task_pool_size=7" in cli.flags_file_text().splitlines()


def test_configs_declare_a_shared_setting_once():
    """A setting several configs hold is one declaration: same help and type in each."""
    seen = {}
    for entry in ENTRIES:
        for field in settings_of(entry.config_class):
            if field.name in seen:
                assert (field.metadata[HELP], field.type) == seen[field.name], field.name
            seen[field.name] = (field.metadata[HELP], field.type)
    derived = {
        "horizon",
        "max_meta_batch_size",
        "train_tasks",
        "eval_tasks",
        "outer_optimizer",
        "eval_seed",
    }
    for entry in ENTRIES:
        for field in dataclasses.fields(entry.config_class):
            assert field.name in seen or field.name in derived | {"num_task_slots"}, field.name


def test_no_setting_name_starts_with_no():
    """flags.txt reads `--noX` as X = false (experiments/flags_file.py): a setting named "no…"
    would be misread."""
    for entry in ENTRIES:
        for field in settings_of(entry.config_class):
            assert not field.name.startswith("no"), field.name
