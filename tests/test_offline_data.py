"""Offline data for MACAW: the on-disk format and its checks, the behaviour agents (Thompson
sampling on bandits, one SAC agent per task), and the generating app."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from metarl_jax.data import DataSetSpec, generate_data_set
from metarl_jax.data.behaviour import (
    SacAgentConfig,
    bandit_data_per_task,
    sac_data_arrays,
    sac_data_chunk,
    sac_data_init,
    sac_data_per_task,
)
from metarl_jax.envs import make_env
from metarl_jax.io import offline
from metarl_jax.io.offline import (
    OfflineDataError,
    load_offline_data,
    load_partial_state,
    save_offline_data,
    save_partial_state,
    tasks_from_arrays,
)
from metarl_jax.tasks import BanditTask, GoalTask, sample_batch

from .conftest import REPO_ROOT, random_offline_dataset, run_main, snapshot


def _tasks(env, n, seed):
    return sample_batch(env.task_space.sample, jax.random.PRNGKey(seed), n)


# ----- (a) the format round trip -----------------------------------------------------------


def test_round_trip_and_tasks(tmp_path):
    env = make_env("navigation")
    arrays, metadata = random_offline_dataset(env)
    save_offline_data(str(tmp_path), arrays, metadata)
    assert sorted(os.listdir(tmp_path)) == ["metadata.json", "offline_data.npz"]
    loaded, loaded_metadata = load_offline_data(str(tmp_path), env)
    assert set(loaded) == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
    shapes = {name: list(array.shape) for name, array in arrays.items()}
    assert loaded_metadata == {"format_version": 1, **metadata, "arrays": shapes}
    tasks = tasks_from_arrays(loaded, "test_tasks", env)
    assert isinstance(tasks, GoalTask)
    assert isinstance(tasks.goal, jax.Array)
    np.testing.assert_array_equal(tasks.goal, arrays["test_tasks/goal"])


# ----- (b) damaged or foreign data sets ----------------------------------------------------


def _assert_refused(directory, env, *fragments):
    with pytest.raises(OfflineDataError) as raised:
        load_offline_data(str(directory), env)
    message = str(raised.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_bad_data_sets_are_refused_with_one_line(tmp_path):
    navigation, bandit = make_env("navigation"), make_env("bandit", num_arms=5)
    nav_dir, bandit_dir = tmp_path / "nav", tmp_path / "bandit"
    save_offline_data(str(nav_dir), *random_offline_dataset(navigation))
    save_offline_data(str(bandit_dir), *random_offline_dataset(bandit))

    _assert_refused(tmp_path / "absent", None, "no such directory")
    _assert_refused(nav_dir, bandit, "made for env 'navigation'", "'bandit'")
    _assert_refused(bandit_dir, make_env("bandit", num_arms=3), "5 arms", "3")
    load_offline_data(str(bandit_dir), bandit)

    metadata_path = nav_dir / "metadata.json"
    original = json.loads(metadata_path.read_text())
    wrong_shape = json.loads(json.dumps(original))
    wrong_shape["arrays"]["train/rewards"] = [3, 5]
    metadata_path.write_text(json.dumps(wrong_shape))
    _assert_refused(nav_dir, None, "train/rewards", "[3, 4]", "[3, 5]")
    metadata_path.write_text(json.dumps({**original, "format_version": 7}))
    _assert_refused(nav_dir, None, "format_version 7")

    metadata_path.write_text(json.dumps(original))
    data_path = nav_dir / "offline_data.npz"
    data = data_path.read_bytes()
    data_path.write_bytes(data[: len(data) // 2])
    _assert_refused(nav_dir, navigation, "unreadable or truncated")

    os.remove(metadata_path)
    _assert_refused(nav_dir, navigation, "metadata.json is missing")


# ----- (c) bandit behaviour data -----------------------------------------------------------


def test_bandit_data_moves_from_random_to_good_pulls():
    tasks = BanditTask(jax.random.uniform(jax.random.PRNGKey(3), (20, 5)))
    pulls = 400
    arrays = bandit_data_per_task(tasks, pulls, jax.random.PRNGKey(0))
    assert arrays["obs"].shape == arrays["next_obs"].shape == (20, pulls, 1)
    assert arrays["actions"].shape == (20, pulls) and arrays["actions"].dtype == np.int32
    assert not arrays["obs"].any() and not arrays["next_obs"].any()
    assert np.all(arrays["dones"] == 1.0)
    np.testing.assert_array_equal(arrays["returns"], arrays["rewards"])
    quarter = pulls // 4
    first, last = arrays["rewards"][:, :quarter].mean(), arrays["rewards"][:, -quarter:].mean()
    best = float(np.mean(np.max(np.asarray(tasks.arm_probs), axis=1)))
    assert last > first + 0.05, (first, last, best)
    assert last > best - 0.1, (last, best)


# ----- (d) SAC behaviour data --------------------------------------------------------------

HORIZON = 10
TINY_SAC = SacAgentConfig(hidden_sizes=(16, 16), batch_size=32, random_steps=50)


def _episode_returns_by_hand(rewards, dones, horizon, gamma):
    """Discounted returns-to-go of the complete episodes in a task's rows (None elsewhere)."""
    expected = [None] * len(rewards)
    start = 0
    while start < len(rewards):
        end = start
        while end < len(rewards) and end - start < horizon:
            end += 1
            if dones[end - 1]:
                break
        if not dones[end - 1] and end - start < horizon:
            break  # the last episode, cut where the buffer was full
        ret = 0.0
        for t in range(end - 1, start - 1, -1):
            ret = rewards[t] + gamma * ret
            expected[t] = ret
        start = end
    return expected


@pytest.mark.slow
def test_sac_data_per_task_and_resume(tmp_path):
    env = make_env("navigation", horizon=HORIZON)
    tasks = _tasks(env, 3, 0)
    key = jax.random.PRNGKey(7)
    arrays, returns = sac_data_per_task(env, TINY_SAC, tasks, key, 195, chunk_iterations=10)
    n = 200  # 195 steps rounded up to whole episodes
    assert returns.shape == (2, 3) and np.all(np.isfinite(returns))
    assert set(arrays) == {"obs", "actions", "rewards", "next_obs", "dones", "returns"}
    assert arrays["obs"].shape == arrays["next_obs"].shape == (3, n, 2)
    assert arrays["actions"].shape == (3, n, 2)
    for name in ("rewards", "dones", "returns"):
        assert arrays[name].shape == (3, n)
    assert np.all(np.abs(arrays["actions"]) <= 1.0)
    assert np.all(arrays["rewards"] < 0.0)  # minus a distance: every row is a real transition

    expected = _episode_returns_by_hand(
        arrays["rewards"][1], arrays["dones"][1], HORIZON, TINY_SAC.gamma
    )
    rows = [t for t, value in enumerate(expected) if value is not None]
    assert len(rows) >= n - HORIZON
    np.testing.assert_allclose(
        arrays["returns"][1][rows],
        np.asarray(expected, dtype=object)[rows].astype(np.float64),
        rtol=1e-5,
        atol=1e-5,
    )

    # Resumed through a saved state (the same compiled chunk): the same data, and each task's
    # buffer and agent its own.
    state = sac_data_init(env, TINY_SAC, tasks, key, 195)
    state, _ = sac_data_chunk(state, env, TINY_SAC, 10)
    directory = str(tmp_path / "partial")
    save_partial_state(directory, state, {"returns": np.arange(3.0)})
    restored, extras = load_partial_state(directory, sac_data_init(env, TINY_SAC, tasks, key, 195))
    np.testing.assert_array_equal(extras["returns"], np.arange(3.0))
    assert int(restored["iteration"]) == 10
    state, _ = sac_data_chunk(restored, env, TINY_SAC, 10)
    for name, array in sac_data_arrays(state).items():
        np.testing.assert_array_equal(array, arrays[name], err_msg=name)
    for field in ("actions", "rewards", "obs"):
        assert not np.allclose(arrays[field][0], arrays[field][1])
    kernel = np.asarray(state["agents"]["params"]["actor"]["params"]["mean"]["kernel"])
    assert not np.allclose(kernel[0], kernel[1])


# ----- (e) the app -------------------------------------------------------------------------


def _run_app(*args, timeout=120) -> subprocess.CompletedProcess:
    return run_main(*args, timeout=timeout, module="experiments.make_offline_data")


def _assert_usage_error(result, flag):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --{flag}:"), result.stderr


def test_app_writes_a_bandit_data_set_and_refuses_to_overwrite(tmp_path):
    out_dir = str(tmp_path / "bandit")
    args = (
        "--env=bandit",
        "--num_arms=3",
        "--num_train_tasks=4",
        "--num_test_tasks=2",
        "--steps_per_task=60",
        f"--out_dir={out_dir}",
    )
    result = _run_app(*args)
    assert result.returncode == 0, result.stderr
    assert out_dir in result.stdout and "train/actions" in result.stdout
    arrays, metadata = load_offline_data(out_dir, make_env("bandit", num_arms=3))
    assert arrays["train/actions"].shape == (4, 60) and arrays["test/rewards"].shape == (2, 60)
    assert arrays["train_tasks/arm_probs"].shape == (4, 3)
    assert not np.allclose(arrays["train_tasks/arm_probs"][:2], arrays["test_tasks/arm_probs"])
    assert metadata["behaviour"] == "thompson" and metadata["num_arms"] == 3
    assert len(metadata["returns_per_task"]["train"]) == 4
    assert sorted(os.listdir(out_dir)) == ["metadata.json", "offline_data.npz"]

    before = snapshot(out_dir)
    _assert_usage_error(_run_app(*args), "out_dir")
    assert snapshot(out_dir) == before

    moon_dir = tmp_path / "moon"
    _assert_usage_error(_run_app("--env=moon", f"--out_dir={moon_dir}"), "env")
    assert not moon_dir.exists()


# ----- (f) resuming the app: flags.txt, and the flags.json of partial sets made before it ---------

TINY_NAV_FLAGS = (
    "--env=navigation",
    "--horizon=10",
    "--num_train_tasks=2",
    "--num_test_tasks=1",
    "--steps_per_task=40",
    "--random_steps=20",
    "--hidden_sizes=16",
    "--chunk_iterations=2",
)
STOP_AFTER_FIRST_CHUNK = """
import sys
import experiments.make_offline_data as app

def stop_after_first_chunk(*args, progress, **kwargs):
    def stopping(line):
        progress(line)
        if line.startswith("chunk "):
            raise KeyboardInterrupt
    return generate(*args, progress=stopping, **kwargs)

generate, app.generate_data_set = app.generate_data_set, stop_after_first_chunk
sys.argv = ["make_offline_data", *sys.argv[1:]]
app.entry_point()
"""


def _stopped_after_first_chunk(out_dir):
    """The app run with TINY_NAV_FLAGS into out_dir, stopped after its first chunk was saved."""
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "JAX_PLATFORMS": "cpu"}
    command = [
        sys.executable,
        "-c",
        STOP_AFTER_FIRST_CHUNK,
        *TINY_NAV_FLAGS,
        f"--out_dir={out_dir}",
    ]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0 and "KeyboardInterrupt" in result.stderr, result.stderr
    assert sorted(os.listdir(os.path.join(out_dir, "partial"))) == ["flags.txt", "state.npz"]


def _assert_same_data_set(directory, expected_arrays, expected_metadata):
    arrays, metadata = load_offline_data(str(directory))
    assert set(arrays) == set(expected_arrays)
    for name, array in expected_arrays.items():
        np.testing.assert_array_equal(arrays[name], array, err_msg=name)
    ignored = ("wall_seconds", "format_version", "arrays")
    assert {k: v for k, v in metadata.items() if k not in ignored} == {
        k: v for k, v in json.loads(json.dumps(expected_metadata)).items() if k not in ignored
    }


@pytest.mark.slow
def test_app_resumes_by_flags_txt(tmp_path):
    """A stopped app run leaves partial/flags.txt (the flags that define the data, as --flagfile
    lines); --resume compares the flags with it (any --chunk_iterations) and finishes the same
    data set as one uninterrupted library call; without flags.txt there is nothing to resume."""
    spec = DataSetSpec(
        make_env("navigation", horizon=10),
        num_train_tasks=2,
        num_test_tasks=1,
        steps_per_task=40,
        behaviour=SacAgentConfig(hidden_sizes=(16,), random_steps=20),
        chunk_iterations=2,
    )
    expected_arrays, expected_metadata = generate_data_set(spec, str(tmp_path / "uninterrupted"))

    stopped = tmp_path / "stopped"
    _stopped_after_first_chunk(str(stopped))
    flags_txt = (stopped / "partial" / "flags.txt").read_text().splitlines()
    assert flags_txt == sorted(flags_txt) and "--hidden_sizes=16" in flags_txt
    assert "--gamma=0.99" in flags_txt and not any("out_dir" in line for line in flags_txt)
    unrecorded = tmp_path / "unrecorded"
    shutil.copytree(stopped, unrecorded)
    os.remove(unrecorded / "partial" / "flags.txt")

    _assert_usage_error(_run_app(*TINY_NAV_FLAGS, f"--out_dir={stopped}"), "out_dir")
    refused = _run_app(*TINY_NAV_FLAGS, "--seed=1", "--resume", f"--out_dir={stopped}")
    _assert_usage_error(refused, "resume")
    assert "--seed differs" in refused.stderr and "(1 vs 0)" in refused.stderr
    resumed = _run_app(*TINY_NAV_FLAGS, "--chunk_iterations=3", "--resume", f"--out_dir={stopped}")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "at iteration 2" in resumed.stdout
    _assert_same_data_set(stopped, expected_arrays, expected_metadata)

    refused = _run_app(*TINY_NAV_FLAGS, "--resume", f"--out_dir={unrecorded}")
    _assert_usage_error(refused, "resume")
    assert f"{unrecorded} holds no unfinished data set" in refused.stderr


def test_offline_module_exports():
    assert offline.FORMAT_VERSION == 1
    from metarl_jax.io import OfflineDataError as exported

    assert exported is OfflineDataError
