"""The sweep axis sharded over devices: 4 (simulated CPU) devices give the same run as 1.

XLA_FLAGS must be set before JAX starts, so the runs happen in subprocesses (this module run as
`python -m tests.test_sharding MODE OUT_DIR`), which save every array and a few facts about
shardings; the tests here compare them. Three subprocesses run at once: one process with 4
host-platform devices (`single`), and two processes with 2 devices each joined by
`initialize_distributed` into one 4-device run (`multi`, the several-hosts code path). They
compile with `--xla_backend_optimization_level=0` (half the compile time; every run alike).

The sweep: seeds (0, 1, 2) x meta-batch sizes (1, 2) = 6 members, not a multiple of 4, so the
member axis is padded to 8 on 4 devices (2 members each). Two iterations in chunks of one:
- `four` / `one`: all 4 devices / the first device only;
- `resumed`: iteration 2 on 4 devices from `four`'s state after iteration 1 (unpadded, replicated);
- `resumed_host`: the same from that state as numpy arrays;
- `restored`: the same from that state saved and restored by orbax through `init_states` as the
  template (what `experiments.main --resume` does);
- `multi` / `multi_restored`: the 2-process run, uninterrupted / resumed as `restored`.
Those runs use the masked layout, except `multi*` (the default, packed); the packed layout (packs
of the two meta-batch sizes of a seed: 3 packs padded to 4, one per device) runs as
`packed_four`, `packed_one` and `packed_resumed` (from `packed_four`'s state after iteration 1).
"""

import functools
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from .conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # learning checks and app runs: the slow tier

NUM_DEVICES = 4
SEEDS = (0, 1, 2)
META_BATCH_SIZES = (1, 2)
NUM_MEMBERS = len(SEEDS) * len(META_BATCH_SIZES)
ITERATIONS = 2
RTOL, ATOL = 1e-5, 1e-6
SWEPT_INNER_LR = (0.05, 0.1, 0.3)  # 0.1: tiny_config's own, as in the unswept runs


# ----- the subprocess ---------------------------------------------------------------------------


def _layout(tree) -> dict:
    import jax

    leaf = jax.tree.leaves(tree)[0]
    return {
        "shape": list(leaf.shape),
        "spec": list(leaf.sharding.spec),  # P("members") -> ["members"]
        "devices": len(leaf.sharding.device_set),
        "fully_addressable": leaf.is_fully_addressable,
        "shards": sorted(
            [s.device.id, s.index[0].start or 0, s.data.shape[0]] for s in leaf.addressable_shards
        ),
    }


def _flat(name: str, results) -> dict[str, np.ndarray]:
    import jax

    result = results[-1]
    parts = {
        "state": result.state,
        "train": result.train_metrics,
        "eval": result.eval_metrics,
        "env_steps": result.env_steps,
    }
    leaves = jax.tree_util.tree_flatten_with_path(parts)[0]
    return {f"{name}{jax.tree_util.keystr(path)}": np.asarray(leaf) for path, leaf in leaves}


def _save(out_dir: str, tag: str, arrays: dict, facts: dict) -> None:
    np.savez(os.path.join(out_dir, f"{tag}.npz"), **arrays)
    with open(os.path.join(out_dir, f"{tag}.json"), "w") as f:
        json.dump(facts, f)


def _single(out_dir: str) -> None:
    import jax

    from metarl_jax.algos import make_maml
    from metarl_jax.algos.hyper_sweep import swept_algorithm
    from metarl_jax.io import checkpoints
    from metarl_jax.sweep import init_states, sweep_members, train

    from .conftest import tiny_config, tiny_navigation

    assert len(jax.devices()) == NUM_DEVICES, jax.devices()
    algorithm = make_maml(tiny_config(), tiny_navigation())
    members, _ = sweep_members(SEEDS, META_BATCH_SIZES)
    masked = functools.partial(train, algorithm, members, ITERATIONS, 1, layout="masked")
    four = list(masked())
    one = list(masked(devices=jax.devices()[:1]))
    middle = four[0].state
    resumed = list(masked(state=middle, start_iteration=1))
    host = jax.device_get(middle)
    resumed_host = list(masked(state=host, start_iteration=1))
    manager = checkpoints.checkpoint_manager(os.path.join(out_dir, "checkpoints"))
    checkpoints.save(manager, 1, middle)
    restored_state = checkpoints.restore(manager, 1, init_states(algorithm, members))
    restored = list(masked(state=restored_state, start_iteration=1))
    packed = functools.partial(train, algorithm, members, ITERATIONS, 1, layout="packed")
    packed_four = list(packed())
    packed_one = list(packed(devices=jax.devices()[:1]))
    packed_resumed = list(packed(state=packed_four[0].state, start_iteration=1))

    runs = {"four": four, "one": one, "resumed": resumed, "resumed_host": resumed_host}
    runs |= {"restored": restored, "packed_four": packed_four, "packed_one": packed_one}
    runs["packed_resumed"] = packed_resumed
    # a swept setting: seed 0 x meta-batch (1, 2) x inner_lr (0.05, 0.1, 0.3), packs of one value
    swept_members, _ = sweep_members((0,), META_BATCH_SIZES, hypers={"inner_lr": SWEPT_INNER_LR})
    swept_algorithm_ = swept_algorithm(make_maml, tiny_config(), tiny_navigation())
    swept = functools.partial(train, swept_algorithm_, swept_members, ITERATIONS, 1)
    runs["swept_four"] = list(swept())
    runs["swept_one"] = list(swept(devices=jax.devices()[:1]))
    runs["swept_resumed"] = list(swept(state=runs["swept_four"][0].state, start_iteration=1))
    arrays = {
        key: value for name, results in runs.items() for key, value in _flat(name, results).items()
    }
    facts = {
        "iterations": {name: [r.iteration for r in results] for name, results in runs.items()},
        "four_sharded": [_layout(r.sharded_state) for r in four],
        "four_state": _layout(four[-1].state),
        "one_sharded": _layout(one[-1].sharded_state),
        "one_state_is_sharded_state": one[-1].state is one[-1].sharded_state,
        "restored_template": _layout(init_states(algorithm, members)),
        "packed_sharded": _layout(packed_four[-1].sharded_state),
        "packed_state": _layout(packed_four[-1].state),
    }
    padded = jax.device_get(four[-1].sharded_state.params)
    facts["padding_repeats_last_member"] = all(
        np.array_equal(leaf[k], leaf[NUM_MEMBERS - 1])
        for leaf in jax.tree.leaves(padded)
        for k in range(NUM_MEMBERS, leaf.shape[0])
    )
    _save(out_dir, "single", arrays, facts)


def _multi(out_dir: str) -> None:
    """One of two processes (JAX_PROCESS_ID, JAX_NUM_PROCESSES, JAX_COORDINATOR_ADDRESS set)."""
    from metarl_jax.sweep import initialize_distributed

    initialize_distributed()  # before anything touches a device

    import jax

    from metarl_jax.algos import make_maml
    from metarl_jax.io import checkpoints
    from metarl_jax.sweep import init_states, sweep_members, train

    from .conftest import tiny_config, tiny_navigation

    assert jax.process_count() == 2 and len(jax.devices()) == NUM_DEVICES, jax.devices()
    algorithm = make_maml(tiny_config(), tiny_navigation())
    members, _ = sweep_members(SEEDS, META_BATCH_SIZES)
    multi = list(train(algorithm, members, ITERATIONS, chunk_length=1))
    manager = checkpoints.checkpoint_manager(os.path.join(out_dir, "multi_checkpoints"))
    checkpoints.save(manager, 1, multi[0].state)
    restored_state = checkpoints.restore(manager, 1, init_states(algorithm, members))
    restored = list(
        train(algorithm, members, ITERATIONS, 1, state=restored_state, start_iteration=1)
    )
    if jax.process_index() == 0:
        arrays = {**_flat("multi", multi), **_flat("multi_restored", restored)}
        facts = {
            "sharded": _layout(multi[-1].sharded_state),
            "local_devices": jax.local_device_count(),
        }
        _save(out_dir, "multi", arrays, facts)


# ----- the tests ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _start(mode: str, out_dir: str, log: str, devices: int, **env_vars) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    flags.append(f"--xla_force_host_platform_device_count={devices}")
    flags.append("--xla_backend_optimization_level=0")  # halves compile time; runs are tiny
    env["XLA_FLAGS"] = " ".join(flags)
    env.update(env_vars)
    with open(os.path.join(out_dir, log), "w") as output:  # a file: a full pipe would block
        return subprocess.Popen(
            [sys.executable, "-m", "tests.test_sharding", mode, out_dir],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("sharding"))
    address = f"localhost:{_free_port()}"
    processes = {"single": _start("single", out_dir, "single.log", NUM_DEVICES)}
    for process_id in range(2):
        processes[f"multi{process_id}"] = _start(
            "multi",
            out_dir,
            f"multi{process_id}.log",
            NUM_DEVICES // 2,
            JAX_COORDINATOR_ADDRESS=address,
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(process_id),
        )
    try:
        for p in processes.values():
            p.wait(timeout=600)
    finally:
        for p in processes.values():
            if p.poll() is None:
                p.kill()
    for name, p in processes.items():
        with open(os.path.join(out_dir, f"{name}.log")) as f:
            assert p.returncode == 0, f"{name} subprocess failed:\n{f.read()}"
    arrays, facts = {}, {}
    for tag in ("single", "multi"):
        with np.load(os.path.join(out_dir, f"{tag}.npz")) as data:
            arrays.update(data)
        with open(os.path.join(out_dir, f"{tag}.json")) as f:
            facts[tag] = json.load(f)
    return arrays, facts


def _run(arrays, name):
    return {key[len(name) :]: value for key, value in arrays.items() if key.startswith(name + "[")}


def _assert_runs_equal(arrays, name, reference, rtol=RTOL, atol=ATOL):
    actual, expected = _run(arrays, name), _run(arrays, reference)
    assert actual.keys() == expected.keys()
    assert any(key.startswith("['state'].params") for key in expected)
    assert any(key.startswith("['eval']") for key in expected)
    for key, value in expected.items():
        assert value.shape[0] == NUM_MEMBERS, key
        np.testing.assert_allclose(actual[key], value, rtol=rtol, atol=atol, err_msg=key)


def test_four_devices_equal_one_device(runs):
    """Final params, optimizer state, every metric and env steps; padding never shows."""
    arrays, facts = runs
    facts = facts["single"]
    assert facts["iterations"]["four"] == facts["iterations"]["one"] == [1, 2]
    _assert_runs_equal(arrays, "four", "one")
    np.testing.assert_array_equal(arrays["four['state'].iteration"], ITERATIONS)


def test_state_is_sharded_over_four_devices(runs):
    facts = runs[1]["single"]
    for layout in facts["four_sharded"]:
        assert layout["shape"][0] == 8  # 6 members padded to a multiple of 4
        assert layout["spec"] == ["members"]
        assert layout["devices"] == NUM_DEVICES
        # Four shards of 2 members on four distinct devices, covering rows 0..7.
        assert sorted(start for _, start, _ in layout["shards"]) == [0, 2, 4, 6]
        assert all(size == 2 for _, _, size in layout["shards"])
        assert len({device for device, _, _ in layout["shards"]}) == NUM_DEVICES
    assert facts["padding_repeats_last_member"]
    # What the caller sees has the 6 members only (replicated: 6 rows do not split over 4).
    assert facts["four_state"]["shape"][0] == NUM_MEMBERS
    assert facts["four_state"]["devices"] == NUM_DEVICES
    assert facts["four_state"]["spec"] == []
    assert facts["restored_template"]["shape"][0] == NUM_MEMBERS
    # One device: no padding, the yielded state is the device state itself.
    assert facts["one_sharded"]["shape"][0] == NUM_MEMBERS
    assert facts["one_sharded"]["devices"] == 1
    assert facts["one_state_is_sharded_state"]


def test_packed_layout_on_four_devices_equals_one_device_and_masked(runs):
    """Packs of a seed's two members, whole packs per device (3 padded to 4) == the packed run on
    one device, and == the masked run; to test_sweep.py's tolerance (a device's block of 1 or 3
    packs compiles to another summation order: ~1e-6 apart on parameters near 0)."""
    arrays, facts = runs
    _assert_runs_equal(arrays, "packed_four", "packed_one", rtol=1e-4, atol=1e-5)
    _assert_runs_equal(arrays, "packed_one", "one", rtol=1e-4, atol=1e-5)
    sharded = facts["single"]["packed_sharded"]
    assert sharded["shape"][0] == 8 and sharded["devices"] == NUM_DEVICES
    assert sorted(start for _, start, _ in sharded["shards"]) == [0, 2, 4, 6]
    assert facts["single"]["packed_state"]["shape"][0] == NUM_MEMBERS  # member order, no padding


def test_packed_resume_equals_uninterrupted_run(runs):
    arrays, facts = runs
    assert facts["single"]["iterations"]["packed_resumed"] == [2]
    _assert_runs_equal(arrays, "packed_resumed", "packed_four", rtol=0.0, atol=0.0)  # bitwise


def test_swept_setting_on_four_devices_equals_one_device_and_resumes_bitwise(runs):
    """3 packs (one per inner_lr) padded to 4 == the same sweep on one device; resumed after
    iteration 1 == uninterrupted; the members at tiny_config's own inner_lr == the unswept
    packed run's seed-0 members."""
    arrays, facts = runs
    _assert_runs_equal(arrays, "swept_four", "swept_one", rtol=1e-4, atol=1e-5)
    assert facts["single"]["iterations"]["swept_resumed"] == [2]
    _assert_runs_equal(arrays, "swept_resumed", "swept_four", rtol=0.0, atol=0.0)
    swept, unswept = _run(arrays, "swept_one"), _run(arrays, "packed_one")
    at_own_lr = [SWEPT_INNER_LR.index(0.1) + k * len(SWEPT_INNER_LR) for k in range(2)]
    seed_zero = [k * len(SEEDS) for k in range(2)]  # meta-batch 1 and 2
    for key, value in unswept.items():
        np.testing.assert_allclose(
            swept[key][at_own_lr], value[seed_zero], rtol=1e-4, atol=1e-5, err_msg=key
        )


@pytest.mark.parametrize("name", ["resumed", "resumed_host", "restored"])
def test_resume_equals_uninterrupted_run(runs, name):
    """Iteration 2 from the unpadded state after iteration 1 == the uninterrupted run."""
    arrays, facts = runs
    assert facts["single"]["iterations"][name] == [2]
    _assert_runs_equal(arrays, name, "four", rtol=0.0, atol=0.0)  # bitwise, as resume elsewhere


if __name__ == "__main__":
    {"single": _single, "multi": _multi}[sys.argv[1]](sys.argv[2])


@pytest.mark.parametrize("name", ["multi", "multi_restored"])
def test_two_processes_equal_one_process(runs, name):
    """2 processes x 2 devices (gathered metrics, orbax resume; the default packed layout) ==
    1 process x 4 devices."""
    arrays, facts = runs
    _assert_runs_equal(arrays, name, "packed_four")
    sharded = facts["multi"]["sharded"]
    assert facts["multi"]["local_devices"] == 2
    assert sharded["shape"][0] == 8 and sharded["devices"] == NUM_DEVICES
    assert not sharded["fully_addressable"]
    assert [size for _, _, size in sharded["shards"]] == [2, 2]  # this process's two devices
