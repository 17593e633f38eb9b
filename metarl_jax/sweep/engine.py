"""The sweep engine: every sweep member of every algorithm trains in one compiled function.

Members (seeds x meta-batch sizes x numbers of training tasks) are one leading batch axis: the
algorithm's `init`, `update` and `evaluate` are vmapped over it, and `update` is scanned over a
chunk of iterations. The host loop runs between chunks (progress, metrics, checkpoints), never
inside them.
"""

import itertools
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.algos.api import Algorithm, State, SweepMember


def sweep_members(
    seeds: Sequence[int],
    meta_batch_sizes: Sequence[int],
    num_train_tasks: Sequence[int] = (0,),
) -> tuple[SweepMember, list[dict]]:
    """The product of the swept values, stacked on one leading axis, and one row per member.

    Order: meta-batch size, then number of training tasks, then seed (seeds vary fastest).
    """
    rows = [
        {"seed": s, "meta_batch_size": m, "num_train_tasks": k}
        for m, k, s in itertools.product(meta_batch_sizes, num_train_tasks, seeds)
    ]
    members = SweepMember(
        seed=jnp.asarray([r["seed"] for r in rows], jnp.int32),
        meta_batch_size=jnp.asarray([r["meta_batch_size"] for r in rows], jnp.int32),
        num_train_tasks=jnp.asarray([r["num_train_tasks"] for r in rows], jnp.int32),
    )
    return members, rows


class ChunkResult(NamedTuple):
    iteration: int  # iterations done after this chunk
    state: State  # stacked over members
    train_metrics: dict[str, np.ndarray]  # mean over the chunk's iterations, shape [S]
    eval_metrics: dict[str, np.ndarray]  # at the chunk's end, shape [S]
    env_steps: np.ndarray  # cumulative, shape [S]
    seconds: float  # wall time of the chunk (compile included on the first)


def init_states(algorithm: Algorithm, members: SweepMember) -> State:
    return jax.jit(jax.vmap(algorithm.init))(members)


def _chunk_fn(algorithm: Algorithm, length: int):
    def run_member(state, member):
        state, metrics = jax.lax.scan(
            lambda s, _: algorithm.update(s, member), state, None, length=length
        )
        return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    return jax.jit(jax.vmap(run_member))


def train(
    algorithm: Algorithm,
    members: SweepMember,
    num_iterations: int,
    chunk_length: int,
    state: State | None = None,
    start_iteration: int = 0,
) -> Iterator[ChunkResult]:
    """Run every member from `start_iteration` to `num_iterations`, one chunk at a time."""
    if state is None:
        state = init_states(algorithm, members)
    chunks = {}
    evaluate = jax.jit(jax.vmap(algorithm.evaluate))
    steps_per_iteration = np.asarray(jax.vmap(algorithm.env_steps_per_iteration)(members))
    iteration = start_iteration
    while iteration < num_iterations:
        length = min(chunk_length, num_iterations - iteration)
        if length not in chunks:
            chunks[length] = _chunk_fn(algorithm, length)
        started = time.perf_counter()
        state, train_metrics = chunks[length](state, members)
        eval_metrics = evaluate(state, members)
        train_metrics, eval_metrics = jax.device_get((train_metrics, eval_metrics))
        iteration += length
        yield ChunkResult(
            iteration=iteration,
            state=state,
            train_metrics=train_metrics,
            eval_metrics=eval_metrics,
            env_steps=steps_per_iteration * iteration,
            seconds=time.perf_counter() - started,
        )
