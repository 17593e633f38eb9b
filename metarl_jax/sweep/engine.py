"""The sweep engine: every sweep member of every algorithm trains in one compiled function.

Members (seeds x meta-batch sizes x numbers of training tasks) are one leading batch axis: the
algorithm's `init`, `update` and `evaluate` are vmapped over it, and `update` is scanned over a
chunk of iterations. The host loop runs between chunks (progress, metrics, checkpoints), never
inside them.

The member axis is sharded over devices: a 1-D mesh (axis `MEMBER_AXIS`) over all visible devices
(or those given), every stacked array placed with `NamedSharding(mesh, P(MEMBER_AXIS))`, and each
device runs the vmapped computation on its own block of members (`shard_map`: members never
communicate, not even through a vmapped while loop's "any member still running" test). Shardings
must divide the axis evenly, so S members are padded to the next multiple of the device count by
repeating the last member; the padding is dropped from everything `train` yields, and `train`
takes back an unpadded state to resume. One device: no padding, the same computation as a plain
`jit(vmap(...))`.

Packed layout (`layout="packed"`, for algorithms with a `packed_update`: MAML, RL²): a masked
member computes all `max_meta_batch_size` tasks and masks those beyond its own meta-batch size. A
pack instead groups the members that differ only in meta-batch size (same seed, same number of
training tasks) and lays their real tasks side by side on one task axis (`PackLayout`), so a sweep
over sizes {1, 2, 5, 10, 20, 40} computes 78 task slots per pack where masks compute 240. Inside
the engine members are then ordered pack by pack, whole packs per device (padded with repeated
packs); everything `train` yields is in member order as in the masked layout.

Several processes (hosts), after `initialize_distributed()`: every process runs the same program
on the same full member arrays; global arrays are assembled with `jax.make_array_from_callback`
(each process supplies its devices' blocks) and results are brought to the host with
`multihost_utils.process_allgather`, so every process sees all members' metrics.
"""

import functools
import itertools
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from metarl_jax.algos.api import Algorithm, PackLayout, SharedData, State, SweepMember

MEMBER_AXIS = "members"
LAYOUTS = ("packed", "masked")


def sweep_members(
    seeds: Sequence[int],
    meta_batch_sizes: Sequence[int],
    num_train_tasks: Sequence[int] = (0,),
    hypers: Mapping[str, Sequence[float]] | None = None,
) -> tuple[SweepMember, list[dict]]:
    """The product of the swept values, stacked on one leading axis, and one row per member.

    Order: meta-batch size, then number of training tasks, then each swept setting in the order
    given, then seed (seeds vary fastest).
    """
    hypers = dict(hypers or {})
    rows = [
        {
            "seed": s,
            "meta_batch_size": m,
            "num_train_tasks": k,
            **dict(zip(hypers, values, strict=True)),
        }
        for m, k, *values, s in itertools.product(
            meta_batch_sizes, num_train_tasks, *hypers.values(), seeds
        )
    ]
    members = SweepMember(
        seed=jnp.asarray([r["seed"] for r in rows], jnp.int32),
        meta_batch_size=jnp.asarray([r["meta_batch_size"] for r in rows], jnp.int32),
        num_train_tasks=jnp.asarray([r["num_train_tasks"] for r in rows], jnp.int32),
        hypers={name: jnp.asarray([r[name] for r in rows], jnp.float32) for name in hypers},
    )
    return members, rows


class ChunkResult(NamedTuple):
    iteration: int  # iterations done after this chunk
    # Stacked over the S members (no padding). Sharded over the mesh when S is a multiple of the
    # device count (then it is `sharded_state` itself), else a copy replicated over the mesh.
    state: State
    train_metrics: dict[str, np.ndarray]  # mean over the chunk's iterations, shape [S]
    eval_metrics: dict[str, np.ndarray]  # at the chunk's end, shape [S]
    env_steps: np.ndarray  # cumulative, shape [S]
    seconds: float  # wall time of the chunk (compile included on the first)
    # The state as it lives on the devices: padded to a multiple of the device count (the last
    # member repeated) and sharded over the mesh's member axis; in the packed layout, in the
    # engine's pack-by-pack order (`SweepPlan.order`).
    sharded_state: State = None
    compile_seconds: float = 0.0  # of `seconds`, the time JAX spent tracing and compiling


# ----- compile time ---------------------------------------------------------------------------

_COMPILE_EVENT = "/jax/core/compile/"  # tracing, lowering and XLA's compile, as JAX reports them
_compile_clock = [0.0]  # seconds JAX has spent compiling in this process (once listening)


def _count_compile_time(event: str, duration: float, **_) -> None:
    if event.startswith(_COMPILE_EVENT):
        _compile_clock[0] += duration


@functools.cache
def _listen_to_compile_time() -> None:
    jax.monitoring.register_event_duration_secs_listener(_count_compile_time)


# ----- devices ----------------------------------------------------------------------------------


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
) -> None:
    """Join a multi-process (several hosts) run; call once per process, before any other JAX call.

    Thin wrapper of `jax.distributed.initialize`. Arguments left None come from the environment:
    JAX reads JAX_COORDINATOR_ADDRESS ("host:port" of process 0) and JAX_LOCAL_DEVICE_IDS itself
    and detects SLURM, Open MPI and Kubernetes jobs; this function also reads JAX_NUM_PROCESSES and
    JAX_PROCESS_ID. Afterwards `jax.devices()` lists every process's devices and the sweep axis is
    sharded over all of them.
    """
    if num_processes is None and os.environ.get("JAX_NUM_PROCESSES"):
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and os.environ.get("JAX_PROCESS_ID"):
        process_id = int(os.environ["JAX_PROCESS_ID"])
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )


def member_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every visible device, of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("no devices to shard the sweep over")
    return Mesh(np.asarray(devices, dtype=object), (MEMBER_AXIS,))


def padded_size(num_members: int, num_devices: int) -> int:
    """The smallest multiple of `num_devices` that holds `num_members`."""
    return -(-num_members // num_devices) * num_devices


def _to_host(tree):
    """Every leaf as a full numpy array on every process (gathered across processes if needed)."""

    def fetch(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return np.asarray(jax.device_get(leaf))

    return jax.tree.map(fetch, tree)


def _pad_rows(leaf: np.ndarray, size: int) -> np.ndarray:
    """Pad the leading (member) axis to `size` by repeating the last member."""
    missing = size - leaf.shape[0]
    if missing == 0:
        return leaf
    return np.concatenate([leaf, np.repeat(leaf[-1:], missing, axis=0)], axis=0)


def _place(tree, mesh: Mesh, num_members: int, size: int):
    """Stacked leaves of S members -> global arrays of `size` members sharded over the mesh.

    A leaf already laid out that way stays on the devices; any other is fetched to the host,
    padded and assembled with `make_array_from_callback` (every process holds the same full
    array and hands over the blocks of its own devices).
    """
    sharding = NamedSharding(mesh, P(MEMBER_AXIS))

    def place(leaf):
        if (
            isinstance(leaf, jax.Array)
            and leaf.shape[:1] == (size,)
            and leaf.sharding.is_equivalent_to(sharding, leaf.ndim)
        ):
            return leaf
        host = _to_host(leaf)
        if host.shape[:1] not in ((num_members,), (size,)):
            raise ValueError(
                f"a leaf of shape {host.shape} is not stacked over the {num_members} members"
            )
        host = _pad_rows(host, size)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


# ----- compiled pieces, cached per (algorithm, mesh) --------------------------------------------


def _sharded(fn, mesh: Mesh, num_args: int, shared: SharedData | None = None):
    """jit(shard_map(vmap(fn))): each device maps `fn` over its own block of members.

    With `shared`, `fn` takes its arrays as a last, unmapped argument, replicated on every device.
    """
    spec = P(MEMBER_AXIS)
    sharding = NamedSharding(mesh, spec)
    if shared is None:
        mapped = jax.shard_map(
            jax.vmap(fn),
            mesh=mesh,
            in_specs=(spec,) * num_args,
            out_specs=spec,
            check_vma=False,  # every input and output is split over members
        )
        return jax.jit(mapped, in_shardings=(sharding,) * num_args, out_shardings=sharding)
    mapped = jax.shard_map(
        jax.vmap(fn, in_axes=(0,) * num_args + (None,)),
        mesh=mesh,
        in_specs=(spec,) * num_args + (P(),),
        out_specs=spec,
        check_vma=False,
    )
    replicated = NamedSharding(mesh, P())
    compiled = jax.jit(
        mapped, in_shardings=(sharding,) * num_args + (replicated,), out_shardings=sharding
    )
    arrays = _replicated(shared, mesh)  # one copy per device, shared by every compiled piece
    return lambda *args: compiled(*args, arrays)


@functools.lru_cache(maxsize=4)
def _replicated(shared: SharedData, mesh: Mesh):
    """Every leaf whole on every device of the mesh (each process supplies its own copy)."""
    sharding = NamedSharding(mesh, P())

    def place(leaf):
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, shared.arrays)


@functools.lru_cache(maxsize=32)
def _init_fn(algorithm: Algorithm, mesh: Mesh):
    return _sharded(algorithm.init, mesh, 1, algorithm.shared_data)


@functools.lru_cache(maxsize=32)
def _evaluate_fn(algorithm: Algorithm, mesh: Mesh):
    return _sharded(algorithm.evaluate, mesh, 2, algorithm.shared_data)


@functools.lru_cache(maxsize=32)
def _chunk_fn(algorithm: Algorithm, mesh: Mesh, length: int):
    def run_member(state, member, *shared):
        state, metrics = jax.lax.scan(
            lambda s, _: algorithm.update(s, member, *shared), state, None, length=length
        )
        return state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    return _sharded(run_member, mesh, 2, algorithm.shared_data)


@functools.lru_cache(maxsize=32)
def _packed_chunk_fn(algorithm: Algorithm, mesh: Mesh, length: int, pack: PackLayout):
    """Each device runs `packed_update` on its whole packs (its block of members, pack-major)."""
    size = pack.num_members

    def run_pack(states, members):
        states, metrics = jax.lax.scan(
            lambda s, _: algorithm.packed_update(s, members, pack), states, None, length=length
        )
        return states, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    def run_block(states, members):
        def to_packs(leaf):
            return leaf.reshape(-1, size, *leaf.shape[1:])

        outputs = jax.vmap(run_pack)(
            jax.tree.map(to_packs, states), jax.tree.map(to_packs, members)
        )
        return jax.tree.map(lambda leaf: leaf.reshape(-1, *leaf.shape[2:]), outputs)

    spec = P(MEMBER_AXIS)
    sharding = NamedSharding(mesh, spec)
    mapped = jax.shard_map(
        run_block, mesh=mesh, in_specs=(spec, spec), out_specs=spec, check_vma=False
    )
    return jax.jit(mapped, in_shardings=(sharding, sharding), out_shardings=sharding)


@functools.lru_cache(maxsize=32)
def _gather_fn(mesh: Mesh, order: tuple[int, ...]):
    """Members picked in `order` (the member order back from the packed one), replicated."""
    index = np.asarray(order)
    return jax.jit(
        lambda tree: jax.tree.map(lambda leaf: leaf[index], tree),
        out_shardings=NamedSharding(mesh, P()),
    )


@functools.lru_cache(maxsize=32)
def _unpad_fn(mesh: Mesh, num_members: int):
    """The first S members, replicated over the mesh (S not a multiple of the device count)."""
    return jax.jit(
        lambda tree: jax.tree.map(lambda leaf: leaf[:num_members], tree),
        out_shardings=NamedSharding(mesh, P()),
    )


def _unpad(state: State, mesh: Mesh, num_members: int) -> State:
    if jax.tree.leaves(state)[0].shape[0] == num_members:
        return state
    return _unpad_fn(mesh, num_members)(state)


# ----- the engine ---------------------------------------------------------------------------------


class SweepPlan(NamedTuple):
    """How the engine lays the S members out: `order` lists the member behind each row of the
    device arrays (padding repeats members), `back[i]` is member i's row; `pack` is None for the
    masked layout."""

    pack: PackLayout | None
    order: np.ndarray
    back: np.ndarray


def sweep_plan(
    algorithm: Algorithm, members: SweepMember, num_devices: int, layout: str = "packed"
) -> SweepPlan:
    """Packs of the members that share a seed, a number of training tasks and the swept settings'
    values when `layout` is "packed", the algorithm has a `packed_update` and every pack holds
    the same meta-batch sizes (a product sweep); otherwise the masked layout. Packs are padded to
    a multiple of the device count by repeating the last, so every device holds whole packs."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    host = _to_host(members)
    seeds, sizes, pools = (np.asarray(x) for x in host[:3])
    num_members = len(seeds)
    groups: dict[tuple, list[int]] = {}
    for i in range(num_members):
        values = tuple(float(host.hypers[name][i]) for name in sorted(host.hypers))
        groups.setdefault((int(seeds[i]), int(pools[i]), *values), []).append(i)
    layouts = {tuple(int(sizes[i]) for i in g) for g in groups.values()}
    if layout == "masked" or algorithm.packed_update is None or len(layouts) != 1:
        size = padded_size(num_members, num_devices)
        order = np.minimum(np.arange(size), num_members - 1)
        return SweepPlan(None, order, np.arange(num_members))
    packs = list(groups.values())
    packs += [packs[-1]] * (padded_size(len(packs), num_devices) - len(packs))
    order = np.concatenate(packs)
    back = np.asarray([np.flatnonzero(order == i)[0] for i in range(num_members)])
    return SweepPlan(PackLayout(layouts.pop()), order, back)


def _placed_members(members: SweepMember, mesh: Mesh) -> tuple[SweepMember, int, int]:
    host = _to_host(members)
    num_members = int(host.seed.shape[0])
    size = padded_size(num_members, mesh.size)
    return _place(host, mesh, num_members, size), num_members, size


def init_states(
    algorithm: Algorithm, members: SweepMember, devices: Sequence[jax.Device] | None = None
) -> State:
    """The initial state of every member, stacked over the S members (see `ChunkResult.state`)."""
    mesh = member_mesh(devices)
    placed, num_members, _ = _placed_members(members, mesh)
    return _unpad(_init_fn(algorithm, mesh)(placed), mesh, num_members)


def evaluate_states(
    algorithm: Algorithm,
    members: SweepMember,
    state: State,
    devices: Sequence[jax.Device] | None = None,
) -> dict[str, np.ndarray]:
    """`algorithm.evaluate` of every member's state (stacked over the S members, any placement),
    as `train` evaluates at a chunk's end: {metric: [S]} on the host."""
    mesh = member_mesh(devices)
    placed, num_members, size = _placed_members(members, mesh)
    metrics = _evaluate_fn(algorithm, mesh)(_place(state, mesh, num_members, size), placed)
    return jax.tree.map(lambda leaf: leaf[:num_members], _to_host(metrics))


class _Setup(NamedTuple):
    mesh: Mesh
    host_members: SweepMember
    placed: SweepMember
    state: State
    chunk_fn: object  # length -> compiled chunk
    member_order: object  # (tree, on_host) -> the S members in member order


def _setup(algorithm, members, state, devices, layout) -> _Setup:
    """The members and state laid out as the sweep plan says, and the plan's compiled chunk."""
    mesh = member_mesh(devices)
    host_members = _to_host(members)
    plan = sweep_plan(algorithm, host_members, mesh.size, layout)
    num_members, size = len(plan.back), len(plan.order)
    if plan.pack is None:
        placed = _place(host_members, mesh, num_members, size)
        if state is not None:  # unpadded (or already padded), any placement
            state = _place(state, mesh, num_members, size)
        chunk_fn = functools.partial(_chunk_fn, algorithm, mesh)

        def member_order(tree, on_host=False):
            if on_host:
                return jax.tree.map(lambda leaf: leaf[:num_members], tree)
            return _unpad(tree, mesh, num_members)
    else:
        placed = _place(_rows(host_members, plan.order), mesh, size, size)
        if state is not None:
            state = _place(_rows(_to_host(state), plan.order), mesh, size, size)
        chunk_fn = functools.partial(_packed_chunk_fn, algorithm, mesh, pack=plan.pack)

        def member_order(tree, on_host=False):
            if on_host:
                return _rows(tree, plan.back)
            return _gather_fn(mesh, tuple(int(i) for i in plan.back))(tree)

    if state is None:
        state = _init_fn(algorithm, mesh)(placed)
    return _Setup(mesh, host_members, placed, state, chunk_fn, member_order)


def iteration_cost(
    algorithm: Algorithm,
    members: SweepMember,
    layout: str = "packed",
    devices: Sequence[jax.Device] | None = None,
) -> dict:
    """XLA's cost analysis (flops, bytes accessed, ...) of one compiled iteration of every member
    in `layout`: lowered and compiled, not run."""
    setup = _setup(algorithm, members, None, devices, layout)
    compiled = setup.chunk_fn(1).lower(setup.state, setup.placed).compile()
    cost = compiled.cost_analysis()
    return cost[0] if isinstance(cost, list) else cost


def train(
    algorithm: Algorithm,
    members: SweepMember,
    num_iterations: int,
    chunk_length: int,
    state: State | None = None,
    start_iteration: int = 0,
    devices: Sequence[jax.Device] | None = None,
    layout: str = "packed",
) -> Iterator[ChunkResult]:
    """Run every member from `start_iteration` to `num_iterations`, one chunk at a time.

    `state` (to resume) is stacked over the S members, unpadded, with any placement: a
    `ChunkResult.state`, a restored checkpoint or numpy arrays. `devices`: the devices the member
    axis is sharded over (default: all visible devices). `layout`: "packed" (members pay only for
    their own tasks, where the algorithm and the sweep allow it; see `sweep_plan`) or "masked".
    """
    mesh, host_members, placed, state, chunk_fn, member_order = _setup(
        algorithm, members, state, devices, layout
    )
    evaluate = _evaluate_fn(algorithm, mesh)
    steps_per_iteration = np.asarray(jax.vmap(algorithm.env_steps_per_iteration)(host_members))
    initial_steps = (
        np.asarray(jax.vmap(algorithm.initial_env_steps)(host_members))
        if algorithm.initial_env_steps is not None
        else np.zeros_like(steps_per_iteration)
    )
    _listen_to_compile_time()
    iteration = start_iteration
    while iteration < num_iterations:
        length = min(chunk_length, num_iterations - iteration)
        started, compiled_before = time.perf_counter(), _compile_clock[0]
        state, train_metrics = chunk_fn(length)(state, placed)
        # wait for the chunk, so that compiling `evaluate` (first chunk) does not overlap its run:
        # `compile_seconds` is then time the chunk did not run
        jax.block_until_ready(train_metrics)
        eval_metrics = evaluate(state, placed)
        train_metrics, eval_metrics = member_order(
            _to_host((train_metrics, eval_metrics)), on_host=True
        )
        iteration += length
        yield ChunkResult(
            iteration=iteration,
            state=member_order(state),
            train_metrics=train_metrics,
            eval_metrics=eval_metrics,
            env_steps=initial_steps + steps_per_iteration * iteration,
            seconds=time.perf_counter() - started,
            sharded_state=state,
            compile_seconds=_compile_clock[0] - compiled_before,
        )


def _rows(tree, index: np.ndarray):
    """The rows `index` of every stacked host leaf."""
    return jax.tree.map(lambda leaf: np.asarray(leaf)[index], tree)
