"""The study: every planned run validates, bad settings are refused, in-sample evaluation."""

import os
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from experiments.plan import check_runs
from experiments.study_design import EXPERIMENTS, JOINED_EXPERIMENTS, algorithms_for_experiment
from experiments.study_presets import DATA_OF, PRESETS, STUDY_FLAGS, algorithms_for
from metarl_jax.algos import MamlConfig, Rl2Config, make_maml, make_rl2, sweep_member
from metarl_jax.algos.meta_training import task_samplers
from metarl_jax.algos.registry import ALGORITHM_NAMES
from metarl_jax.envs import make_env
from metarl_jax.io.offline import save_offline_data
from metarl_jax.tasks import Restriction, navigation_goal_space

from .conftest import random_offline_dataset

CHEETAH_DIR = "--env=cheetah_dir"
FLAG_FILES = sorted(name[: -len(".flags")] for name in os.listdir(STUDY_FLAGS))


def _args(flagfile, algo, overrides=()):
    path = os.path.join(STUDY_FLAGS, flagfile + ".flags")
    return [f"--flagfile={path}", f"--algo={algo}", *overrides]


@pytest.fixture(scope="module")
def bandit_data(tmp_path_factory):
    """A tiny stand-in for the study's bandit data set: 50 training tasks, as (b) sweeps."""
    directory = str(tmp_path_factory.mktemp("offline") / "bandit5")
    save_offline_data(directory, *random_offline_dataset(make_env("bandit"), num_train=50))
    return directory


def test_which_algorithms_join_which_experiment():
    assert set(JOINED_EXPERIMENTS) == set(ALGORITHM_NAMES)
    assert all(joined <= set(EXPERIMENTS) for joined in JOINED_EXPERIMENTS.values())
    assert algorithms_for_experiment("a", discrete_actions=True) == (
        "maml_trpo",
        "maml_ppo",
        "rl2_ppo",
    )
    assert algorithms_for_experiment("a", discrete_actions=False) == (
        "maml_trpo",
        "maml_ppo",
        "rl2_ppo",
        "pearl",
    )
    assert algorithms_for_experiment("b", discrete_actions=True) == ("macaw",)
    assert algorithms_for_experiment("e", discrete_actions=False) == ("maml_trpo", "maml_ppo")


def test_every_flag_file_with_every_algorithm_and_every_preset_run_validates(bandit_data):
    runs = [(name, algo, ()) for name in FLAG_FILES for algo in algorithms_for(name)]
    runs += [run for preset in PRESETS.values() for run in preset()]
    data = {name: (f"--offline_data={bandit_data}",) for name in DATA_OF}  # the study sets it
    errors = check_runs(
        [_args(name, algo, (*over, *data.get(name, ()))) for name, algo, over in runs]
    )
    assert [(run[:2], e) for run, e in zip(runs, errors, strict=True) if e] == []
    assert {run[0] for preset in PRESETS.values() for run in preset()} <= set(FLAG_FILES)


def test_every_study_flag_file_runs_five_seeds_or_more():
    """Five seeds, except the step-size grids of (f): 3 seeds x 9 cells."""
    for name in os.listdir(STUDY_FLAGS):
        with open(os.path.join(STUDY_FLAGS, name)) as f:
            seeds = [line for line in f if line.startswith("--seeds=")]
        least = 3 if name.startswith("f_") else 5
        assert len(seeds) == 1 and len(seeds[0].split("=")[1].split(",")) >= least, name


def _cpu_specs(bandit_data):
    return _preset_specs("cpu", bandit_data)


def _preset_specs(preset, bandit_data, algos=None):
    from experiments import cli

    data = {name: (f"--offline_data={bandit_data}",) for name in DATA_OF}
    specs = []
    for flagfile, algo, overrides in PRESETS[preset]():
        if algos is not None and algo not in algos:
            continue
        cli.FLAGS.unparse_flags()
        cli.FLAGS(
            ["experiments.main", *_args(flagfile, algo, (*overrides, *data.get(flagfile, ())))]
        )
        specs.append((flagfile, algo, cli.spec_from_flags()))
    cli.FLAGS.unparse_flags()
    return specs


def test_cpu_preset_runs_log_enough_for_the_plateau_test_with_three_seeds_or_more(bandit_data):
    """The plateau test compares the last quarter of the logs with the quarter before: every cpu
    run logs at least 8 times (two logs per quarter), and every run has the seeds for a CI."""
    for flagfile, algo, spec in _cpu_specs(bandit_data):
        logs = spec.num_iterations // spec.log_every
        assert logs >= 8, (flagfile, algo, spec.num_iterations, spec.log_every)
        assert len(spec.seeds) >= 3, (flagfile, algo, spec.seeds)


def test_cpu_preset_pearl_runs_use_the_navigation_protocol_that_infers_goals(bandit_data):
    """The navigation protocol (uniform exploration, the encoder trained by a reward decoder only,
    the rank-one posterior family) in every PEARL run of the cpu study, at the horizon of the
    other navigation runs."""
    specs = _cpu_specs(bandit_data)
    navigation_horizons = {
        spec.env.horizon for _, _, spec in specs if spec.env.name == "navigation"
    }
    pearl = [spec for _, algo, spec in specs if algo == "pearl"]
    assert len(pearl) == 4 and navigation_horizons == {50}  # (a), (c), (d), (f)
    for spec in pearl:
        assert spec.config.exploration == "uniform_actions"
        assert spec.config.reward_decoder_weight > 0 and not spec.config.critic_trains_encoder
        assert spec.config.posterior_family == "rank_one"


def test_gpu_preset_pearl_runs_take_the_rank_one_family_where_rewards_are_linear_in_a_2d_task(
    bandit_data,
):
    """2-D Ant-Dir's reward is the velocity projected on the direction, one linear equation in
    (cos, sin) per transition: its PEARL runs take the rank-one family (a supervised check scores
    it 0.79 against 0.52, BUILD_NOTES); Cheetah-Vel's 1-D task keeps oyster's diagonal one."""
    families = {
        spec.env.name: spec.config.posterior_family
        for _, _, spec in _preset_specs("gpu", bandit_data, algos=("pearl",))
    }
    assert families == {"ant_dir": "rank_one", "cheetah_vel": "diagonal"}


@pytest.mark.parametrize(
    "flagfile, algo, overrides, flag",
    [
        ("e_navigation", "rl2_ppo", (), "--algo"),  # (e) counts MAML's gradient steps
        ("e_navigation", "pearl", (), "--algo"),
        ("a_bandit", "pearl", (), "--algo"),  # PEARL needs continuous actions
        ("b_bandit", "macaw", ("--offline_data=/nonexistent",), "--offline_data"),
        ("b_bandit", "maml_trpo", (), "--algo"),  # (b) is MACAW's
        ("c_navigation", "pearl", ("--grad_steps=0",), "--grad_steps"),
        ("c_navigation", "pearl", ("--posterior_family=full",), "--posterior_family"),
        ("d_ant_dir", "maml_trpo", ("--train_tasks=range:0,360",), "--train_tasks"),  # whole space
        ("d_navigation", "maml_trpo", ("--train_tasks=full",), "--train_tasks"),
        ("d_navigation", "maml_trpo", ("--noeval_train_region",), "--eval_train_region"),
        ("e_cheetah_vel", "maml_ppo", ("--eval_tasks=range:0,3",), "--eval_tasks"),
        ("d_cheetah_vel", "maml_ppo", ("--train_tasks=range:2,1",), "--train_tasks"),  # empty
        ("a_navigation", "maml_trpo", ("--num_train_tasks=5000",), "--num_train_tasks"),
        # Cheetah-Dir holds two tasks (forward, backward): no pool of 4 distinct ones
        (
            "a_ant_dir",
            "maml_trpo",
            ("--env=cheetah_dir", "--num_train_tasks=1,2,4"),
            "--num_train_tasks",
        ),
        (
            "c_ant_dir",
            "maml_trpo",
            ("--env=cheetah_dir", "--train_tasks=finite:3"),
            "--train_tasks",
        ),
    ],
)
def test_bad_study_settings_are_refused_naming_the_flag(flagfile, algo, overrides, flag):
    (error,) = check_runs([_args(flagfile, algo, overrides)])
    assert error.startswith(flag), error


@pytest.mark.parametrize(
    "overrides, flag",
    [
        (("--horizon=5",), "--horizon"),  # the data's episodes are one pull
        (("--gamma=0.9",), "--gamma"),  # its Monte-Carlo returns use 0.99
        (("--inner_steps=2",), "--inner_steps"),
        (("--eval_adapt_steps=0",), "--eval_adapt_steps"),
        (("--num_train_tasks=1,60",), "--num_train_tasks"),  # the data holds 50
        (("--train_tasks=range:0,0.5",), "--train_tasks"),  # the data set fixes the tasks
    ],
)
def test_macaw_settings_that_disagree_with_the_data_are_refused(bandit_data, overrides, flag):
    (error,) = check_runs(
        [_args("b_bandit", "macaw", (f"--offline_data={bandit_data}", *overrides))]
    )
    assert error.startswith(flag), error


def test_pearl_all_pool_smaller_than_a_swept_k_is_refused():
    (error,) = check_runs([_args("a_navigation", "pearl", ("--task_pool_size=16",))])
    assert error.startswith("--task_pool_size"), error


def test_in_sample_evaluation_draws_fresh_tasks_of_the_training_region():
    """(d)'s eval_train/ tasks: fresh draws from the training box, not its finite pool."""
    space = navigation_goal_space()
    train_tasks = Restriction("range", (0.0, 0.0), (0.5, 0.5), num_tasks=3)
    samplers = task_samplers(space, train_tasks, Restriction(), pool_seed=0)
    goals = np.asarray(samplers.train_region(jax.random.PRNGKey(1), 200).goal)
    assert np.all((goals >= 0.0) & (goals <= 0.5))
    assert len(np.unique(goals[:, 0])) == 200  # not the 3 pool tasks
    pool_goals = np.asarray(samplers.train(sweep_member(0, 1, 3))(jax.random.PRNGKey(1), 200).goal)
    assert len(np.unique(pool_goals[:, 0])) == 3


@pytest.mark.parametrize("algo", ["maml", "rl2"])
def test_algorithms_report_in_sample_returns_beside_out_of_sample(algo):
    env = make_env("navigation", horizon=4)
    quadrant = Restriction("range", (0.0, 0.0), (0.5, 0.5))
    outside = Restriction("complement", (0.0, 0.0), (0.5, 0.5))
    shared = dict(hidden_sizes=(8,), horizon=4, max_meta_batch_size=2, num_eval_tasks=2)
    shared.update(train_tasks=quadrant, eval_tasks=outside, eval_train_region=True)
    if algo == "maml":
        algorithm = make_maml(MamlConfig(rollouts_per_task=2, eval_adapt_steps=1, **shared), env)
        curve = ["return_step0", "return_step1"]
    else:
        algorithm = make_rl2(Rl2Config(episodes_per_trial=2, **shared), env)
        curve = ["return_episode0", "return_episode1"]
    member = sweep_member(0, 2)
    metrics = jax.jit(algorithm.evaluate)(algorithm.init(member), member)
    names = ["return", "reward_per_step", *curve]
    assert set(metrics) == {f"{p}/{name}" for p in ("eval", "eval_train") for name in names}
    for p in ("eval", "eval_train"):
        # the reward per step over every episode played, adaptation included: both curve points
        # (MAML: before and after its one step; RL²: both episodes), over the horizon of 4
        played = (metrics[f"{p}/{curve[0]}"] + metrics[f"{p}/{curve[1]}"]) / 2
        assert float(metrics[f"{p}/reward_per_step"]) == pytest.approx(float(played) / 4, rel=1e-6)
    # the goals differ (in the quadrant vs outside it), so do the returns
    assert metrics["eval/return"] != metrics["eval_train/return"]


def test_inner_loss_defaults():
    """LVC by default for both MAML variants; another value is refused with one line."""
    from experiments import cli

    def inner_loss(*args):
        cli.FLAGS.unparse_flags()
        try:
            cli.FLAGS(["experiments.main", *args])
            return cli.spec_from_flags().config.inner_loss
        finally:
            cli.FLAGS.unparse_flags()

    assert inner_loss("--algo=maml_trpo") == "lvc"
    assert inner_loss("--algo=maml_ppo") == "lvc"
    assert inner_loss("--algo=maml_trpo", "--inner_loss=reinforce") == "reinforce"
    assert check_runs([["--algo=maml_trpo", "--inner_loss=dice"]]) == [
        "--inner_loss: 'dice' must be one of ('reinforce', 'lvc')"
    ]


def test_expected_wall_time_line_is_read_back_by_the_study():
    """main's line after the first chunk: time so far + iterations left at the first chunk's
    per-iteration time (hand-computed); the study reads the seconds back from it."""
    from experiments.app_plumbing import expected_seconds, expected_wall_time_line, run_seconds

    first_chunk = SimpleNamespace(seconds=70.0, compile_seconds=50.0)  # 10 iterations in 20 s
    assert run_seconds(first_chunk) == 20.0
    line = expected_wall_time_line(80.0, 2.0, 290, first_chunk.compile_seconds)
    assert line.startswith("expected wall time 0:11:00 (660 s: 80 s so far, compile 50 s of it")
    assert expected_seconds(line) == 660.0
    assert expected_seconds("expected wall time 1 day, 0:00:01 (86401 s: ...") == 86401.0
    assert expected_seconds("iter 10/300 | ...") is None


def test_experiment_f_needs_a_sweep():
    """Every algorithm joins (f), which compares swept step sizes: without --sweep a run of it is
    refused in one line."""
    assert all("f" in joined for joined in JOINED_EXPERIMENTS.values())
    base = ["--algo=maml_trpo", "--experiment=f"]
    refused, swept = check_runs([base, [*base, "--sweep=max_kl:0.003,0.01,0.03"]])
    assert refused == (
        "--sweep: experiment (f) compares step sizes; sweep at least one setting "
        "(--sweep=NAME:V1,V2,...)"
    )
    assert swept == ""
