"""Restrictions of a task distribution, each a new pure sampling function `sample(key, n)`.

A restriction is parsed from one flag string:

    full                    the space's own distribution
    finite:K                K tasks drawn once (from the pool seed), then sampled uniformly
    range:LO,HI[,LO,HI...]  the distribution conditioned on a box of coordinates
    complement:LO,HI[,...]  the distribution conditioned on the outside of that box

A box gives one (LO, HI) pair per coordinate, or a single pair applied to every coordinate.
Conditioning is exact for any base distribution: draws are rejected until they fall in the
region (a `lax.while_loop`, so it stays jittable and vmappable). `parse_restriction` refuses a
region of zero probability, so the loop always ends.

The finite pool is drawn from the region and its size may be swept as a traced value: the pool is
padded to the largest size and `num_active` (0 meaning "no pool, the whole region") selects the
prefix used, so one compiled function serves k = 1, 2, 4, ... and the full distribution.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.tasks.spaces import Task, TaskSpace, balanced_batch, sample_batch

KINDS = ("full", "finite", "range", "complement")
MAX_FINITE_TASKS = 4096
_PROBABILITY_PROBE_SAMPLES = 8192


@dataclasses.dataclass(frozen=True)
class Restriction:
    """A region of the task space (full / range / complement) and an optional finite pool size."""

    region: str = "full"  # 'full' | 'range' | 'complement'
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    num_tasks: int = 0  # > 0: a finite pool of this many tasks drawn from the region

    def describe(self) -> str:
        box = ",".join(f"{lo:g},{hi:g}" for lo, hi in zip(self.low, self.high, strict=True))
        text = "full" if self.region == "full" else f"{self.region}:{box}"
        return f"finite:{self.num_tasks} of {text}" if self.num_tasks else text


class RestrictionError(ValueError):
    pass


def check_pool_size(num_tasks: int, space: TaskSpace, flag: str) -> None:
    """A pool of K distinct tasks needs a space with at least K of them."""
    if space.num_distinct and num_tasks > space.num_distinct:
        raise RestrictionError(
            f"--{flag}: {num_tasks} tasks asked for, but {space.name} holds only "
            f"{space.num_distinct} distinct tasks"
        )


def parse_restriction(spec: str, space: TaskSpace, flag: str = "tasks") -> Restriction:
    """Parse and validate a restriction flag against a task space; raise RestrictionError."""
    kind, _, args = spec.strip().partition(":")
    if kind not in KINDS:
        raise RestrictionError(
            f"--{flag}={spec!r}: unknown restriction {kind!r}; use one of {KINDS}"
        )
    if kind == "full":
        if args:
            raise RestrictionError(f"--{flag}={spec!r}: 'full' takes no arguments")
        return Restriction()
    if kind == "finite":
        try:
            k = int(args)
        except ValueError:
            raise RestrictionError(
                f"--{flag}={spec!r}: expected finite:K with an integer K"
            ) from None
        if not 1 <= k <= MAX_FINITE_TASKS:
            raise RestrictionError(f"--{flag}={spec!r}: K must be in [1, {MAX_FINITE_TASKS}]")
        check_pool_size(k, space, flag)
        return Restriction(num_tasks=k)
    low, high = _parse_box(spec, args, space, flag)
    restriction = Restriction(region=kind, low=low, high=high)
    probability = region_probability(space, restriction)
    if probability == 0.0:
        what = (
            "contains no task" if kind == "range" else "leaves no task (the box covers the space)"
        )
        raise RestrictionError(f"--{flag}={spec!r}: the region {what} of {space.name}")
    return restriction


def _parse_box(spec: str, args: str, space: TaskSpace, flag: str):
    try:
        values = [float(v) for v in args.split(",")] if args else []
    except ValueError:
        raise RestrictionError(f"--{flag}={spec!r}: bounds must be numbers") from None
    d = space.num_coords
    if len(values) == 2:
        values = values * d
    if len(values) != 2 * d:
        raise RestrictionError(
            f"--{flag}={spec!r}: give LO,HI for all coordinates or one pair for each of "
            f"{space.coord_names}"
        )
    low, high = tuple(values[0::2]), tuple(values[1::2])
    for name, lo, hi, space_lo, space_hi in zip(
        space.coord_names, low, high, space.low, space.high, strict=True
    ):
        if not lo < hi:
            raise RestrictionError(f"--{flag}={spec!r}: empty interval [{lo:g}, {hi:g}] for {name}")
        if lo < space_lo or hi > space_hi:
            raise RestrictionError(
                f"--{flag}={spec!r}: [{lo:g}, {hi:g}] for {name} lies outside the task space "
                f"[{space_lo:g}, {space_hi:g}]"
            )
    return low, high


def in_region(space: TaskSpace, restriction: Restriction, task: Task) -> jax.Array:
    """Whether one task lies in the restriction's region (True everywhere for 'full')."""
    if restriction.region == "full":
        return jnp.asarray(True)
    c = space.coords(task)
    inside = jnp.all((c >= jnp.asarray(restriction.low)) & (c <= jnp.asarray(restriction.high)))
    return inside if restriction.region == "range" else ~inside


def covers_space(space: TaskSpace, restriction: Restriction) -> bool:
    """Whether the region is the whole space: `full`, or a range whose box contains the bounds."""
    if restriction.region == "full":
        return True
    if restriction.region != "range":
        return False
    return all(lo <= s for lo, s in zip(restriction.low, space.low, strict=True)) and all(
        hi >= s for hi, s in zip(restriction.high, space.high, strict=True)
    )


def region_probability(space: TaskSpace, restriction: Restriction) -> float:
    """Monte-Carlo probability of the region under the full distribution (a validation probe)."""
    tasks = sample_batch(space.sample, jax.random.PRNGKey(12345), _PROBABILITY_PROBE_SAMPLES)
    inside = jax.vmap(lambda t: in_region(space, restriction, t))(tasks)
    return float(np.mean(np.asarray(inside)))


def region_sampler(space: TaskSpace, restriction: Restriction) -> Callable[[jax.Array], Task]:
    """sample_one(key) -> a task from the full distribution conditioned on the region."""
    if restriction.region == "full":
        return space.sample

    def sample_one(key):
        def rejected(carry):
            return ~in_region(space, restriction, carry[1])

        def redraw(carry):
            key, _ = carry
            key, sub = jax.random.split(key)
            return key, space.sample(sub)

        key, sub = jax.random.split(key)
        return jax.lax.while_loop(rejected, redraw, (key, space.sample(sub)))[1]

    return sample_one


def draw_pool(space: TaskSpace, restriction: Restriction, pool_seed: int) -> Task | None:
    """The finite pool: restriction.num_tasks tasks from the region, task i fixed by (seed, i).

    Task i does not depend on the pool's size, so a smaller pool is a prefix of a larger one.
    """
    if not restriction.num_tasks:
        return None
    if _enumerable(space, restriction):
        return balanced_batch(space, restriction.num_tasks)  # k tasks are k distinct ones
    key = jax.random.PRNGKey(pool_seed)
    return sample_batch(region_sampler(space, restriction), key, restriction.num_tasks)


def _enumerable(space: TaskSpace, restriction: Restriction) -> bool:
    """A whole space of finitely many tasks that it can list one by one."""
    return restriction.region == "full" and space.distinct_task is not None


def make_sampler(
    space: TaskSpace,
    restriction: Restriction,
    pool_seed: int = 0,
    num_active: jax.Array | int | None = None,
    pool: Task | None = None,
    balanced: bool = False,
) -> Callable[[jax.Array, int], Task]:
    """sample(key, n) for a restriction; `num_active` (traced) overrides the finite pool's size.

    num_active = 0 samples the region itself; 1 <= num_active <= restriction.num_tasks samples
    uniformly from the first num_active tasks of the pool. Pass a `pool` drawn once with
    `draw_pool` to keep it out of traced code. `balanced`: a whole space of finitely many tasks
    is not sampled but cycled through (each task equally often, as evaluations want).
    """
    sample_region = region_sampler(space, restriction)
    if balanced and not restriction.num_tasks and _enumerable(space, restriction):
        return lambda key, n: balanced_batch(space, n)
    if not restriction.num_tasks:
        return lambda key, n: sample_batch(sample_region, key, n)
    if pool is None:
        pool = draw_pool(space, restriction, pool_seed)
    active = restriction.num_tasks if num_active is None else num_active

    def sample_one(key):
        # The region draw uses the task key itself, as the pool-free sampler does, so that the
        # num_active = 0 member of a sweep equals a separate run without a pool.
        index = jax.random.randint(jax.random.fold_in(key, 1), (), 0, jnp.maximum(active, 1))
        from_pool = jax.tree.map(lambda leaf: leaf[index], pool)
        from_region = sample_region(key)
        return jax.tree.map(lambda p, r: jnp.where(active > 0, p, r), from_pool, from_region)

    return lambda key, n: sample_batch(sample_one, key, n)
