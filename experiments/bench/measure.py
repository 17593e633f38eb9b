"""What the benchmarks share: the machine's description, timings and XLA FLOP counts of jitted
functions, the sweep members they vmap over, and the sizes they run at.

A benchmark's sizes are flags whose default depends on the machine: its reference sizes on an
accelerator (or with --reference_sizes), smaller ones on a CPU where the reference would take more
than about 5 minutes there. `sizes` picks them and prints them as the `sizes:` line.
"""

import os
import platform
import time
from collections.abc import Mapping

import jax
import jax.numpy as jnp
from absl import flags

from experiments.app_plumbing import check_positive
from metarl_jax.algos import sweep_member

flags.DEFINE_integer(
    "repeats",
    None,
    "Timed repetitions of each piece (after a warm-up call); 5 (pearl on a CPU: 2).",
)
flags.DEFINE_integer(
    "sweep_members",
    None,
    "rl2_bandit, sweep, pearl, macaw: members (seeds) vmapped in one compiled call; 8 (pearl on a "
    "CPU: 1).",
)
flags.DEFINE_integer(
    "meta_batch_size", None, "maml_trpo_nav, sweep: tasks per meta-iteration (20)."
)
flags.DEFINE_integer("rollouts_per_task", None, "maml_trpo_nav, sweep: episodes per task (20).")
flags.DEFINE_boolean(
    "reference_sizes",
    False,
    "Run at the reference sizes on a CPU too (on an accelerator they are the default).",
)
FLAGS = flags.FLAGS


def use_the_apps_matmul_precision() -> None:
    """float32 matmuls at `highest`, the experiment apps' default, stated with XLA_FLAGS."""
    jax.config.update("jax_default_matmul_precision", "highest")
    print(f"XLA_FLAGS: {os.environ.get('XLA_FLAGS', '')}; float32 matmul precision: highest")


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    device = jax.devices()[0]
    return (
        f"{device.platform} {device.device_kind}; {os.cpu_count()} cores ({cpu}); "
        f"jax {jax.__version__}"
    )


def sizes(reference: Mapping[str, object], on_cpu: Mapping[str, object] | None = None) -> dict:
    """Each size flag's value: as given, else its reference value, or its `on_cpu` value on a CPU
    without --reference_sizes. Prints which setting that is (the `sizes:` line)."""
    given = {name: FLAGS[name].value for name in reference if FLAGS[name].value is not None}
    reduced = (
        any(name not in given for name in on_cpu or ())
        and jax.default_backend() == "cpu"
        and not FLAGS.reference_sizes
    )
    defaults = {**reference, **on_cpu} if reduced else reference
    chosen = {name: given.get(name, default) for name, default in defaults.items()}
    for name, value in chosen.items():
        if isinstance(value, int):
            check_positive(name, value)
    if reduced:
        setting = (
            f"reduced for a CPU; the reference, which --reference_sizes runs: {as_flags(reference)}"
        )
    else:
        setting = "the reference sizes"
    if given:
        setting += f"; {', '.join(f'--{name}' for name in given)} as given"
    print(f"sizes: {as_flags(chosen)} ({setting})")
    return chosen


def as_flags(values: Mapping[str, object]) -> str:
    return " ".join(
        f"--{name}={','.join(map(str, value)) if isinstance(value, list | tuple) else value}"
        for name, value in values.items()
    )


def timed(fn, *args, repeats: int):
    """(seconds per call, result) after one warm-up call; blocks on the result."""
    result = jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        result = jax.block_until_ready(fn(*args))
    return (time.perf_counter() - start) / repeats, result


def compiled_seconds(fn, *args, repeats: int):
    """(compile seconds, seconds per call after a warm-up call) of a jitted function."""
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_seconds = time.perf_counter() - start
    seconds, _ = timed(compiled, *args, repeats=repeats)
    return compile_seconds, seconds


def flops_of(fn, *args) -> float:
    """XLA's FLOP count of a jitted function (loop bodies count once: keep loops out of `fn`)."""
    cost = fn.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", 0.0))


def matmul_gflops(repeats: int, size: int = 2048) -> float:
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size))
    seconds, _ = timed(jax.jit(lambda x: x @ x), a, repeats=max(repeats, 5))
    return 2 * size**3 / seconds / 1e9


def member_counts(sweep_members: int) -> tuple[int, ...]:
    """One member, then `sweep_members` vmapped in one call (once if that is one too)."""
    return (1,) if sweep_members == 1 else (1, sweep_members)


def vmapped_members(count: int, meta_batch_size: int):
    """Sweep members 0..count-1 stacked along a leading axis, for a vmapped init/update."""
    return jax.vmap(lambda seed: sweep_member(seed, meta_batch_size))(jnp.arange(count))
