"""Reading a run back: re-evaluation reproduces the run's own last evaluation, the loaded
policies act and play their adaptation, and bad input to the evaluate app is one usage error
before anything compiles or is written."""

import csv
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.app_plumbing import UsageError
from experiments.evaluation import (
    EvaluationOptions,
    evaluate,
    evaluation_plan,
    format_results,
    write_results,
)
from metarl_jax import load_policy
from metarl_jax.algos.macaw import init_params
from metarl_jax.algos.registry import algorithm_entry
from metarl_jax.io import checkpoints
from metarl_jax.runs import RECORD_FILE, play_adaptation, run_record
from metarl_jax.runs.policies import macaw_policy

from .conftest import REPO_ROOT, TINY_FLAGS, run_main, tiny_config, tiny_navigation
from .run_dirs import env_options, make_run_dir
from .test_macaw import bandit, thompson_data, tiny_macaw
from .test_pearl import tiny_pearl
from .test_rl2 import tiny_rl2

NAV = env_options("navigation", 8)


def _fake_run(run_dir) -> str:
    """run.json of a two-seed MAML run and a checkpoint of iteration 2 (of no real state): what
    the checks before compiling read."""
    os.makedirs(run_dir)
    rows = [{"seed": s, "meta_batch_size": 2, "num_train_tasks": 0} for s in (0, 1)]
    record = run_record(
        "maml_trpo", NAV, tiny_config(), rows, (), ["meta_batch_size"], None, "highest", ""
    )
    with open(os.path.join(run_dir, RECORD_FILE), "w") as f:
        json.dump(record, f)
    manager = checkpoints.checkpoint_manager(os.path.join(run_dir, "checkpoints"))
    manager.save(2, args=ocp.args.StandardSave({"x": np.zeros(2)}))
    manager.wait_until_finished()
    return str(run_dir)


BAD_OPTIONS = [
    (dict(run="nowhere"), "--run: nowhere holds no run"),
    (dict(checkpoint=5), "--checkpoint: checkpoint 5 is not saved in"),
    (dict(best=True), "--best:"),
    (dict(members=("seed=7",)), "--member: no member of the run has seed=7"),
    (dict(members=("inner_lr=0.1",)), "--member: inner_lr is not a sweep value"),
    (dict(env="cheetah_dir"), "--env: the run trained on navigation"),
    (dict(eval_tasks="range:0,2,0,0.5"), "--eval_tasks="),
    (dict(episodes=3), "--episodes: does not apply"),
    (dict(adapt_steps=99), "--adapt_steps:"),
    (dict(name="latest"), "--name:"),
    (dict(members=("seed=0,seed=1",)), "--member: seed is given twice"),
    (dict(members=("",)), "--member: expected NAME=VALUE"),
]


def test_bad_options_are_one_usage_error_and_write_nothing(tmp_path):
    run_dir = _fake_run(tmp_path / "run")
    os.makedirs(os.path.join(run_dir, "evaluations"))
    open(os.path.join(run_dir, "evaluations", "latest.json"), "w").close()
    for overrides, message in BAD_OPTIONS:
        options = EvaluationOptions(**{"run": run_dir, **overrides})
        with pytest.raises(UsageError) as error:
            evaluation_plan(options)
        assert message in str(error.value), (overrides, str(error.value))
    assert os.listdir(os.path.join(run_dir, "evaluations")) == ["latest.json"]
    plan = evaluation_plan(EvaluationOptions(run_dir, adapt_steps=4, members=("seed=1",)))
    assert plan.members == (1,) and plan.config_changes["eval_adapt_steps"] == 4


def test_a_damaged_record_is_a_usage_error_and_results_never_replace_a_file(tmp_path):
    run_dir = _fake_run(tmp_path / "run")
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        f.write('{"algo": "maml_tr')  # cut short by a kill
    with pytest.raises(UsageError, match=r"--run: .*run\.json is damaged"):
        evaluation_plan(EvaluationOptions(run_dir))
    path = str(tmp_path / "evaluations" / "a.json")
    write_results(path, {"x": 1})
    with pytest.raises(FileExistsError):
        write_results(path, {"x": 2})
    with open(path) as f:
        assert json.load(f) == {"x": 1}
    assert os.listdir(tmp_path / "evaluations") == ["a.json"]


def test_a_run_without_checkpoints_or_its_data_set_is_a_usage_error(tmp_path):
    run_dir = _fake_run(tmp_path / "run")
    assert evaluation_plan(EvaluationOptions(run_dir, render=True)).out_path.endswith(
        "latest_render.json"
    )  # pictures after a plain evaluation take their own name
    path = os.path.join(run_dir, RECORD_FILE)
    with open(path) as f:
        record = json.load(f)
    with open(path, "w") as f:
        json.dump({**record, "offline_data": str(tmp_path / "moved")}, f)
    with pytest.raises(UsageError, match=r"--run: the run's offline data set .*moved is not"):
        evaluation_plan(EvaluationOptions(run_dir))
    with open(path, "w") as f:
        json.dump(record, f)
    shutil.rmtree(os.path.join(run_dir, "checkpoints"))
    with pytest.raises(UsageError, match=r"--run: .* has no checkpoint"):
        evaluation_plan(EvaluationOptions(run_dir))
    assert sorted(os.listdir(run_dir)) == [RECORD_FILE]


@pytest.fixture(scope="module")
def maml_run(tmp_path_factory):
    """Two seeds x two inner step sizes (a swept setting), two iterations."""
    run_dir = str(tmp_path_factory.mktemp("maml") / "run")
    os.makedirs(run_dir)
    hypers = (("inner_lr", (0.1, 0.2)),)
    results = make_run_dir(
        run_dir,
        algorithm_entry("maml_trpo"),
        tiny_config(),
        tiny_navigation(),
        NAV,
        (0, 1),
        (2,),
        hypers,
    )
    return run_dir, results


@pytest.mark.slow
def test_reevaluating_the_last_checkpoint_reproduces_the_runs_last_evaluation(maml_run):
    run_dir, results = maml_run
    logged = results[-1].eval_metrics
    found = evaluate(evaluation_plan(EvaluationOptions(run_dir)))
    assert found["iteration"] == 2 and len(found["members"]) == 4
    for i, member in enumerate(found["members"]):
        for name, values in logged.items():
            assert member[name] == float(values[i]), name
    assert [len(entry["seeds"]) for entry in found["over_seeds"]] == [2, 2]
    assert found["over_seeds"][0]["eval/return"]["ci95"] > 0
    assert "fastest_to_goal" in format_results(found)

    options = EvaluationOptions(run_dir, adapt_steps=3, members=("inner_lr=0.2,seed=1",))
    plan = evaluation_plan(options)
    more = evaluate(plan)
    assert [m["inner_lr"] for m in more["members"]] == [0.2]
    assert {f"eval/return_step{k}" for k in range(4)} <= set(more["members"][0])
    # the steps training took again (another compiled program: to float32 rounding)
    step1 = more["members"][0]["eval/return_step1"]
    np.testing.assert_allclose(step1, found["members"][3]["eval/return_step1"], rtol=1e-5)
    write_results(plan.out_path, more)
    assert os.path.exists(plan.out_path)
    with pytest.raises(UsageError):
        evaluation_plan(options)


@pytest.mark.slow
def test_the_app_exits_2_on_bad_input_and_evaluates_a_run(maml_run):
    run_dir, _ = maml_run
    command = [sys.executable, "-m", "experiments.evaluate", f"--run={run_dir}"]
    bad = subprocess.run(
        [*command, "--member=seed=9"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: --member")
    good = subprocess.run(
        [*command, "--eval_seed=3", "--name=other"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert good.returncode == 0, good.stderr
    assert os.path.exists(os.path.join(run_dir, "evaluations", "other.json"))


@pytest.mark.slow
def test_a_maml_policy_acts_adapts_and_plays_its_adaptation(maml_run):
    run_dir, _ = maml_run
    first = load_policy(run_dir)  # no member named: the first of the sweep's four
    assert (first.row["seed"], first.config.inner_lr) == (0, 0.1)
    policy = load_policy(run_dir, {"seed": 1, "inner_lr": 0.2})
    assert policy.row["seed"] == 1 and policy.config.inner_lr == 0.2
    env, key = policy.env, jax.random.PRNGKey(0)
    task = env.task_space.sample(key)
    obs, _ = env.reset(key, task)
    action = policy.act(policy.params, key, obs[None])
    assert action.shape == (1, env.action_size)
    adapted = policy.adapt(policy.params, task, key)
    assert jax.tree.structure(adapted) == jax.tree.structure(policy.params)
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(key, 3))
    played = play_adaptation(policy, key, tasks, 3)
    assert played.stage_labels == ("before adaptation", "after 1 step", "after 2 steps")
    assert played.obs.shape == (3, 3, 8, env.obs_size)
    assert played.actions.shape == (3, 3, 8, env.action_size)
    assert played.reset_keys.shape == (3, 3, 2)
    first_obs, _ = env.reset(played.reset_keys[1, 2], jax.tree.map(lambda x: x[2], tasks))
    np.testing.assert_array_equal(first_obs, played.obs[1, 2, 0])


def _trained(tmp_path, name, config):
    run_dir = str(tmp_path / name)
    os.makedirs(run_dir)
    make_run_dir(
        run_dir, algorithm_entry(name), config, tiny_navigation(config.horizon),
        env_options("navigation", config.horizon), (0,), (2,), iterations=1,
    )  # fmt: skip
    return run_dir


def _first_observations(policy, seed: int, n: int):
    """(env, key, the first observations of n episodes of a random task)."""
    env, key = policy.env, jax.random.PRNGKey(seed)
    task = env.task_space.sample(key)
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), task)
    return env, key, obs


@pytest.mark.slow
def test_an_rl2_policy_acts_with_its_carry_and_plays_a_trial(tmp_path):
    policy = load_policy(_trained(tmp_path, "rl2_ppo", tiny_rl2()))
    env, key, obs = _first_observations(policy, 1, 2)
    carry, context = policy.start(2)
    actions, carry = policy.act(policy.params, carry, context, key, obs)
    assert actions.shape == (2, env.action_size)
    context = policy.observe(actions, np.zeros(2), np.zeros(2))
    policy.act(policy.params, carry, context, key, obs)
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(key, 2))
    played = play_adaptation(policy, key, tasks, 3)
    assert played.stage_labels == ("episode 1", "episode 2", "episode 3")
    assert played.obs.shape == (3, 2, 3, env.obs_size)
    first_obs, _ = env.reset(played.reset_keys[2, 1], jax.tree.map(lambda x: x[1], tasks))
    np.testing.assert_array_equal(first_obs, played.obs[2, 1, 0])


@pytest.mark.slow
def test_a_pearl_policy_infers_z_acts_on_it_and_plays_episodes(tmp_path):
    policy = load_policy(_trained(tmp_path, "pearl", tiny_pearl()))
    env, key, obs = _first_observations(policy, 2, 4)
    z = policy.prior(key)
    actions = policy.act(policy.params, key, obs, z)
    assert actions.shape == (4, env.action_size) and np.all(np.abs(actions) <= 1)
    width = env.obs_size + env.action_size + 1
    context = np.zeros((5, width + (env.obs_size if policy.config.context_next_obs else 0)))
    posterior_z = policy.posterior(policy.params, context, np.ones(5), key)
    assert posterior_z.shape == z.shape
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(key, 2))
    played = play_adaptation(policy, key, tasks, 2)
    assert played.obs.shape == (2, 2, policy.config.horizon, env.obs_size)
    assert played.stage_labels == ("episode 1", "episode 2")


@pytest.mark.slow
def test_a_macaw_policy_adapts_on_its_data_and_plays_its_test_tasks():
    config, env, data = tiny_macaw(), bandit(), thompson_data(4, 3, 8)
    params = init_params(config, env, jax.random.PRNGKey(0))
    policy = macaw_policy("macaw", config, env, {"seed": 0}, params, data)
    adapted = policy.adapt(params, 2, jax.random.PRNGKey(1))
    assert jax.tree.structure(adapted) == jax.tree.structure(params)
    played = play_adaptation(policy, jax.random.PRNGKey(1), np.arange(3), 3)
    assert played.stage_labels[-1] == "after 2 steps"
    assert played.actions.shape == (3, 3, config.horizon)
    np.testing.assert_array_equal(played.tasks.arm_probs, data.test_tasks.arm_probs)


@pytest.mark.slow
def test_a_run_of_the_run_app_evaluates_to_its_logged_metrics(tmp_path):
    """experiments.main's run.json and checkpoints, read back by experiments.evaluate: the final
    evaluation equals metrics.csv's last rows (which keep 6 significant digits)."""
    run_dir = str(tmp_path / "run")
    flags = (*TINY_FLAGS, "--seeds=0,1", "--notensorboard", f"--out_dir={run_dir}")
    trained = run_main(*flags)
    assert trained.returncode == 0, trained.stderr
    evaluated = run_main(f"--run={run_dir}", "--name=again", module="experiments.evaluate")
    assert evaluated.returncode == 0, evaluated.stderr
    with open(os.path.join(run_dir, "evaluations", "again.json")) as f:
        members = json.load(f)["members"]
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        logged = [row for row in csv.DictReader(f) if row["iteration"] == "4"]
    assert [int(row["seed"]) for row in logged] == [m["seed"] for m in members]
    for row, member in zip(logged, members, strict=True):
        for name in (c for c in row if c.startswith("eval/")):
            np.testing.assert_allclose(member[name], float(row[name]), rtol=1e-5, atol=1e-6)
