"""sweep: one compiled sweep of --sweep_members members against the same members as separate runs.

The members are seeds of the quickstart's MAML-TRPO navigation configuration (meta-batch 20 x 20
episodes, horizon 100, Fisher subsample 0.25, 3 evaluation adaptation steps on 20 tasks), trained
for --sweep_iterations iterations in one chunk, sharded over every visible device; the separate runs
are one compiled 1-member function on one device, called once per seed. Compilation is timed apart
(first call minus a second, cached call) and left out of the steady-state ratio; totals with
compilation are printed too. Last line: separate-runs seconds over sweep seconds, steady state.

With --sweep_layout=packed (or masked) it measures the two layouts against each other instead, on
the study's (c) shape: MAML-TRPO on 2-D navigation, meta-batch sizes {1, 2, 5, 10, 20, 40} in one
sweep (the cpu preset's horizon 50, 10 episodes per task, Fisher subsample 0.5). It prints XLA's
FLOP estimate of one compiled iteration of each (loop bodies counted once, as XLA's cost analysis
does: the same for both layouts, so their ratio stands) and seconds per iteration (compile left
out), and last lines `packed_vs_masked_flops` and `packed_vs_masked_seconds`.

With --sweep_setting=inner_lr it times a sweep of a numeric setting instead: MAML-TRPO's inner step
size on 2-D navigation at the cpu study preset's sizes (horizon 50, 10 episodes per task, Fisher
subsample 0.5, meta-batch 20, 10 evaluation tasks, one seed), 8 values geometric from 0.3x to 3x
its default (0.03 to 0.3), --sweep_iterations (20) iterations in one chunk with evaluation at its
end. One side is one call (`swept_algorithm`: each member reads its value as a traced scalar, one
compile); the other the same 8 values as 8 runs one after another, each compiled anew (there the
value is a compile-time constant). Both start cold: compilation is included. Per side it prints
the wall seconds and their split into compile (JAX's compile events: the chunk's, as
`ChunkResult.compile_seconds` counts them, plus the initial states') and the rest (running); last
line `hyper_sweep_vs_separate_seconds`, one call's seconds over the separate runs' seconds.
"""

import dataclasses
import time

import jax
import numpy as np
from absl import flags

from experiments.bench.measure import machine_description, sizes
from metarl_jax.algos import MamlConfig, make_maml
from metarl_jax.algos.hyper_sweep import swept_algorithm
from metarl_jax.envs import make_env
from metarl_jax.sweep import LAYOUTS, iteration_cost, sweep_members, train

flags.DEFINE_integer(
    "sweep_iterations", None, "sweep: meta-iterations of every member (5; --sweep_setting: 20)."
)
flags.DEFINE_enum(
    "sweep_layout",
    None,
    list(LAYOUTS),
    "sweep: compare the packed and masked layouts on the study's (c) shape instead (either value).",
)
flags.DEFINE_enum(
    "sweep_setting",
    None,
    ["inner_lr"],
    "sweep: time an 8-value sweep of this MAML-TRPO setting in one call against 8 separate runs "
    "instead, compilation included.",
)
STUDY_C_META_BATCH_SIZES = (1, 2, 5, 10, 20, 40)
SWEPT_VALUES = 8
# JAX's compile events (tracing, lowering, XLA's compile), as the engine counts them
COMPILE_EVENT = "/jax/core/compile/"


def compare_layouts() -> None:
    print(f"machine: {machine_description()}")
    size = sizes(
        {"sweep_members": 5, "sweep_iterations": 3, "rollouts_per_task": 10},
        on_cpu={"sweep_members": 1},
    )
    seeds, iterations = list(range(size["sweep_members"])), size["sweep_iterations"]
    config = MamlConfig(
        outer_optimizer="trpo",
        horizon=50,
        rollouts_per_task=size["rollouts_per_task"],
        max_meta_batch_size=max(STUDY_C_META_BATCH_SIZES),
        fisher_subsample=0.5,
        eval_adapt_steps=1,
        num_eval_tasks=10,
    )
    algorithm = make_maml(config, make_env("navigation", horizon=config.horizon))
    members, _ = sweep_members(seeds, STUDY_C_META_BATCH_SIZES)
    real = len(seeds) * sum(STUDY_C_META_BATCH_SIZES)
    print(
        f"MAML-TRPO navigation, study (c): meta-batch sizes {STUDY_C_META_BATCH_SIZES} x "
        f"{len(seeds)} seed(s), {config.rollouts_per_task} episodes x horizon {config.horizon}; "
        f"task slots per iteration: packed {real}, masked "
        f"{len(seeds) * len(STUDY_C_META_BATCH_SIZES) * config.max_meta_batch_size}; "
        f"{iterations} iterations per timing, {len(jax.devices())} device(s)"
    )
    flops, seconds = {}, {}
    for layout in ("packed", "masked"):
        flops[layout] = float(iteration_cost(algorithm, members, layout)["flops"])

        def run(layout=layout):
            start = time.perf_counter()
            result = list(train(algorithm, members, iterations, iterations, layout=layout))[-1]
            jax.block_until_ready(result.state)
            return time.perf_counter() - start

        first = run()  # compiles
        seconds[layout] = run() / iterations
        print(
            f"{layout}: {flops[layout] / 1e9:.2f} GFLOP per iteration (XLA's estimate), "
            f"{seconds[layout]:.2f} s per iteration "
            f"(compile {first - seconds[layout] * iterations:.0f} s)",
            flush=True,
        )
    print(f"packed_vs_masked_flops: {flops['packed'] / flops['masked']:.3f}")
    print(f"packed_vs_masked_seconds: {seconds['packed'] / seconds['masked']:.3f}")


def timed_train(algorithm, members, iterations: int):
    """(wall seconds, compile seconds, the chunk's compile seconds) of one cold `train`
    call of one chunk: the initial states' compile happens outside the chunk, so JAX's compile
    events are counted over the whole call too."""
    compiled = [0.0]

    def count(event: str, duration: float, **_) -> None:
        if event.startswith(COMPILE_EVENT):
            compiled[0] += duration

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        start = time.perf_counter()
        result = list(train(algorithm, members, iterations, iterations))[-1]
        jax.block_until_ready(result.state)
        seconds = time.perf_counter() - start
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    return seconds, compiled[0], result.compile_seconds


def compare_swept_setting(name: str) -> None:
    print(f"machine: {machine_description()}")
    size = sizes({"sweep_iterations": 20, "meta_batch_size": 20, "rollouts_per_task": 10})
    iterations, meta_batch = size["sweep_iterations"], size["meta_batch_size"]
    config = MamlConfig(  # the cpu study preset's navigation sizes (CPU_NAVIGATION)
        outer_optimizer="trpo",
        horizon=50,
        rollouts_per_task=size["rollouts_per_task"],
        max_meta_batch_size=meta_batch,
        fisher_subsample=0.5,
        num_eval_tasks=10,
    )
    env = make_env("navigation", horizon=config.horizon)
    default = getattr(config, name)
    values = tuple(float(f"{v:.3g}") for v in default * np.geomspace(0.3, 3.0, SWEPT_VALUES))
    print(
        f"MAML-TRPO navigation (cpu study preset): meta-batch {meta_batch} x "
        f"{config.rollouts_per_task} episodes x horizon {config.horizon}, Fisher subsample "
        f"{config.fisher_subsample}, {config.num_eval_tasks} evaluation tasks; {name} in "
        f"{values}, seed 0; {iterations} iterations in one chunk (evaluation at its end); "
        f"compilation included"
    )

    def report(side: str, seconds: float, compile_s: float, chunk_compile: float) -> None:
        print(
            f"{side}: {seconds:.1f} s = compile {compile_s:.1f} s (the chunk's "
            f"{chunk_compile:.1f} s, initial states' {compile_s - chunk_compile:.1f} s) + run "
            f"{seconds - compile_s:.1f} s",
            flush=True,
        )

    members, rows = sweep_members((0,), (meta_batch,), hypers={name: values})
    swept_s, swept_compile, chunk_compile = timed_train(
        swept_algorithm(make_maml, config, env), members, iterations
    )
    report(f"one call of {len(rows)} members", swept_s, swept_compile, chunk_compile)

    members, _ = sweep_members((0,), (meta_batch,))
    separate_s = separate_compile = chunk_compile = 0.0
    for row in rows:
        algorithm = make_maml(dataclasses.replace(config, **{name: row[name]}), env)
        seconds, compile_s, chunk_s = timed_train(algorithm, members, iterations)
        separate_s, separate_compile = separate_s + seconds, separate_compile + compile_s
        chunk_compile += chunk_s
    report(f"{len(rows)} separate runs", separate_s, separate_compile, chunk_compile)
    print(f"hyper_sweep_vs_separate_seconds: {swept_s / separate_s:.3f}")


def run() -> None:
    if flags.FLAGS.sweep_setting:
        compare_swept_setting(flags.FLAGS.sweep_setting)
        return
    if flags.FLAGS.sweep_layout:
        compare_layouts()
        return
    print(f"machine: {machine_description()}")
    size = sizes(
        {"sweep_members": 8, "sweep_iterations": 5, "meta_batch_size": 20, "rollouts_per_task": 20}
    )
    num_members, iterations = size["sweep_members"], size["sweep_iterations"]
    meta_batch = size["meta_batch_size"]
    config = MamlConfig(
        outer_optimizer="trpo",
        horizon=100,
        rollouts_per_task=size["rollouts_per_task"],
        max_meta_batch_size=meta_batch,
        fisher_subsample=0.25,
        eval_adapt_steps=3,
        num_eval_tasks=20,
    )
    algorithm = make_maml(config, make_env("navigation", horizon=config.horizon))
    devices = jax.devices()
    print(
        f"MAML-TRPO navigation (quickstart): meta-batch {meta_batch} x "
        f"{config.rollouts_per_task} episodes x horizon {config.horizon}, Fisher subsample "
        f"{config.fisher_subsample}; {num_members} members x {iterations} iterations "
        f"(one chunk, evaluation at its end); {len(devices)} device(s)"
    )

    def run(seeds, run_devices) -> float:
        members, _ = sweep_members(seeds, (meta_batch,))
        start = time.perf_counter()
        result = list(train(algorithm, members, iterations, iterations, devices=run_devices))[-1]
        jax.block_until_ready(result.state)
        return time.perf_counter() - start

    seeds = list(range(num_members))
    first = run(seeds, devices)  # compiles
    sweep_s = run(seeds, devices)  # cached
    sweep_compile = first - sweep_s
    print(
        f"one sweep of {num_members} members on {len(devices)} device(s): compile "
        f"{sweep_compile:.1f} s, run {sweep_s:.2f} s; with compile {first:.1f} s",
        flush=True,
    )

    first = run([0], devices[:1])  # compiles the 1-member function
    separate = [run([seed], devices[:1]) for seed in seeds]
    single_compile = first - separate[0]
    separate_s = sum(separate)
    print(
        f"{num_members} separate 1-member runs on 1 device: compile {single_compile:.1f} s "
        f"(once), run {separate_s:.2f} s ({separate_s / num_members:.2f} s each); with compile "
        f"{single_compile + separate_s:.1f} s in one process, "
        f"{num_members * single_compile + separate_s:.1f} s as {num_members} processes",
        flush=True,
    )
    member_steps = iterations * meta_batch * config.rollouts_per_task * config.horizon * 2
    print(
        f"training env steps/s, all members (evaluation inside the timed call): sweep "
        f"{num_members * member_steps / sweep_s:,.0f}, separate "
        f"{num_members * member_steps / separate_s:,.0f}"
    )
    sweep_total = sweep_compile + sweep_s
    print(
        f"separate / sweep: {separate_s / sweep_s:.2f}x steady state; with compile "
        f"{(single_compile + separate_s) / sweep_total:.2f}x (one process), "
        f"{(num_members * single_compile + separate_s) / sweep_total:.2f}x "
        f"({num_members} processes)"
    )
    print(f"sweep_speedup: {separate_s / sweep_s:.3f}")
