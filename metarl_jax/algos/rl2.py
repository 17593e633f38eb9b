"""RL² (Duan et al., 2016) trained with PPO, as in ProMP's full_code branch.

One iteration:

    sample a meta-batch of tasks T_i
    for each task (vmapped): run trials of E episodes with the recurrent agent, its state kept
        across the episodes of a trial and reset between trials
    advantages: GAE over each whole trial (episode ends do not cut it), then normalized
    for each of `ppo_epochs` epochs, for each minibatch of tasks:
        one Adam step on  clipped surrogate + c_v * value error - c_H * entropy,
        backpropagated through time over the whole trial (or over windows of `bptt_window`
        steps, each from the recurrent state stored at collection)

One function, `iteration`, runs it on a `TaskAxis`: the masked axis of one member (`update`:
smaller meta-batches are a mask over the sampled maximum; every mean is over the valid steps of
active tasks only, and minibatches are drawn among active tasks, so a masked sweep member trains
exactly as a separate run of that meta-batch size) or the packed axis of several (`packed_update`:
each member's real tasks only). Each member's trials are unrolled by its own parameters in one
unroll (a per-slot vmap would turn every step's matmul into many matrix-vector products).
"""

import dataclasses
import functools
import math
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl_jax.algos import config_checks as checks
from metarl_jax.algos import settings
from metarl_jax.algos.api import Algorithm, PackLayout, SweepMember
from metarl_jax.algos.meta_training import (
    MetaState,
    TaskSamplers,
    evaluation_keys,
    evaluation_sets,
    evaluation_task_sets,
    initial_state,
    next_state,
    per_task_keys,
    reward_per_step,
    task_group_metrics,
    task_samplers,
)
from metarl_jax.algos.settings import setting
from metarl_jax.algos.task_axis import TaskAxis
from metarl_jax.envs import Env
from metarl_jax.rl import (
    RecurrentAgent,
    TrialTrajectory,
    episode_returns_per_trial,
    make_recurrent_agent,
    normalize,
    rollout_trials,
    trial_gae,
    unroll,
    unwindowed,
    windowed,
)
from metarl_jax.rl.ppo import epoch_metrics, minibatch_epochs, ppo_loss
from metarl_jax.tasks import Restriction

RECURRENT_UNROLLS = ("cell_steps", "fused")


@dataclasses.dataclass(frozen=True)
class Rl2Config:
    hidden_sizes: tuple[int, ...] = settings.hidden_sizes((64,))
    horizon: int = 200
    episodes_per_trial: int = setting(2, "RL²: episodes per trial (state kept across).")
    trials_per_task: int = setting(1, "RL²: trials per task per iteration.")
    max_meta_batch_size: int = 100
    gamma: float = settings.gamma()
    gae_lambda: float = settings.gae_lambda()
    outer_lr: float = settings.outer_lr()
    ppo_epochs: int = setting(5, "RL²: PPO epochs per iteration.")
    num_minibatches: int = setting(1, "RL²: minibatches (of tasks) per epoch.")
    clip: float = settings.clip(0.2)
    value_coef: float = setting(0.5, "RL²: weight of the value loss.")
    entropy_coef: float = setting(0.0, "RL²: weight of the entropy bonus.")
    max_grad_norm: float = setting(0.0, "RL²: global gradient-norm clip (0: none).")
    recurrent_unroll: str = setting(
        "cell_steps",
        "RL²: how training unrolls the GRUs over a trial: cell_steps (the flax cells stepped in "
        "a scan; the faster on CPUs) | fused (gate kernels concatenated, input projections "
        "hoisted out of the scan, both networks' recurrent products batched, weight gradients "
        "out of the backward scan: rl.gru_sequence; the same numbers, built for accelerators).",
    )
    scan_unroll: int = setting(
        1, "RL²: time steps per loop iteration of the training unroll's scans (speed only)."
    )
    bptt_window: int = setting(
        0,
        "RL²: truncated backpropagation through time: the PPO loss unrolls windows of this many "
        "steps, each from the recurrent state stored at collection (no gradient across windows; "
        "a change of the algorithm, not only of its speed). 0: whole trials.",
    )
    train_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    eval_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    task_pool_seed: int = settings.task_pool_seed()
    num_eval_tasks: int = settings.num_eval_tasks()
    eval_train_region: bool = settings.eval_train_region()
    eval_seed: int = settings.eval_seed()

    def __post_init__(self):
        checks.layer_sizes(self, "hidden_sizes")
        checks.positive(
            self,
            "horizon",
            "episodes_per_trial",
            "trials_per_task",
            "max_meta_batch_size",
            "outer_lr",
            "ppo_epochs",
            "num_minibatches",
            "scan_unroll",
            "clip",
            "num_eval_tasks",
        )
        checks.non_negative(self, "value_coef", "entropy_coef", "max_grad_norm")
        checks.in_unit_interval(self, "gamma", "gae_lambda")
        checks.one_of(self, "recurrent_unroll", RECURRENT_UNROLLS)
        checks.non_negative(self, "bptt_window")
        trial_steps = self.episodes_per_trial * self.horizon
        if self.bptt_window and trial_steps % self.bptt_window:
            checks.fail(
                "bptt_window",
                self.bptt_window,
                f"0 or a divisor of the trial's {trial_steps} steps (episodes_per_trial * horizon)",
            )
        if self.num_minibatches > self.max_meta_batch_size:
            checks.fail(
                "num_minibatches",
                self.num_minibatches,
                f"at most max_meta_batch_size ({self.max_meta_batch_size})",
            )


class PpoBatch(NamedTuple):
    """Trials of a meta-batch, time-major: fields [T, num_slots * trials_per_task, ...], each
    member's trials in its own contiguous columns."""

    inputs: jax.Array
    actions: jax.Array
    log_probs: jax.Array
    advantages: jax.Array  # normalized over the member's trials
    value_targets: jax.Array
    weights: jax.Array  # valid step of an active task
    carries: tuple | None  # the recurrent state each step read at collection (bptt_window)


def rl2_agent(config: Rl2Config, env: Env) -> RecurrentAgent:
    return make_recurrent_agent(env, config.hidden_sizes)


def rl2_optimizer(config: Rl2Config) -> optax.GradientTransformation:
    optimizer = optax.adam(config.outer_lr)
    if config.max_grad_norm > 0:
        optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optimizer)
    return optimizer


def collect(
    config: Rl2Config,
    env: Env,
    agent: RecurrentAgent,
    params,
    task,
    key,
    record_carries: bool | None = None,
) -> TrialTrajectory:
    """Trials of one task [T, trials_per_task, ...]; the states the agent read are kept for
    truncated BPTT (by default when `bptt_window` is set)."""
    return rollout_trials(
        env,
        agent,
        params,
        task,
        key,
        config.trials_per_task,
        config.episodes_per_trial,
        config.horizon,
        record_carries=config.bptt_window > 0 if record_carries is None else record_carries,
    )


def collect_tasks(config: Rl2Config, env: Env, agent: RecurrentAgent, params, tasks, keys):
    """`collect` on each of `tasks` with its key, one set of parameters: [tasks, T, trials, ...]."""
    return jax.vmap(lambda task, key: collect(config, env, agent, params, task, key))(tasks, keys)


def collect_slots(config: Rl2Config, env: Env, agent, params, tasks, slot_keys, axis: TaskAxis):
    """Each member's trials on its own slots (contiguous, static) with its own parameters."""
    return TaskAxis.concatenated(
        [
            collect_tasks(
                config,
                env,
                agent,
                member_params,
                jax.tree.map(lambda x, s=slots: x[s], tasks),
                slot_keys[slots],
            )
            for member_params, slots in zip(axis.members(params), axis.member_slices(), strict=True)
        ]
    )


def trial_returns(config: Rl2Config, env: Env, agent: RecurrentAgent, params, tasks, key):
    """Mean return of each episode of a trial on each task [num_tasks, E]; task i played with
    fold_in(key, i)."""

    def one_task(task, task_key):
        trajectory = collect(config, env, agent, params, task, task_key, record_carries=False)
        return episode_returns_per_trial(trajectory, config.episodes_per_trial).mean(axis=1)

    num_tasks = jax.tree.leaves(tasks)[0].shape[0]
    return jax.vmap(one_task)(tasks, per_task_keys(key, num_tasks))


def per_task_returns(config: Rl2Config, trajectories: TrialTrajectory) -> jax.Array:
    """Mean return of each episode of a trial, per task [tasks, E]."""
    return jax.vmap(lambda t: episode_returns_per_trial(t, config.episodes_per_trial).mean(axis=1))(
        trajectories
    )


def member_columns(batch: PpoBatch, columns: slice) -> PpoBatch:
    return jax.tree.map(lambda x: x[:, columns], batch)


def ppo_batch(
    config: Rl2Config, trajectories: TrialTrajectory, active: jax.Array, axis: TaskAxis
) -> PpoBatch:
    """Task-major trajectories [slots, T, trials, ...] to time-major [T, slots * trials];
    advantages: GAE over whole trials, normalized over each member's own trials."""
    trials = config.trials_per_task
    flat = jax.tree.map(
        lambda x: jnp.moveaxis(x, 0, 1).reshape(x.shape[1], -1, *x.shape[3:]), trajectories
    )
    weights = flat.valid * jnp.repeat(active, trials)[None, :]
    advantages = trial_gae(flat.rewards, flat.values, flat.valid, config.gamma, config.gae_lambda)
    normalized = TaskAxis.concatenated(
        [
            normalize(advantages[:, columns], weights[:, columns])
            for columns in axis.member_slices(trials)
        ],
        axis=1,
    )
    return PpoBatch(
        inputs=flat.inputs,
        actions=flat.actions,
        log_probs=flat.log_probs,
        advantages=normalized,
        value_targets=advantages + flat.values,
        weights=weights,
        carries=flat.carries,
    )


def trial_outputs(config: Rl2Config, agent: RecurrentAgent, params, batch: PpoBatch):
    """Distribution parameters and values [T, N, ...] of one set of parameters: whole trials
    from the zero state, or windows of bptt_window steps from the states stored at collection."""
    inputs, valid, carry = batch.inputs, batch.weights > 0, None
    window = config.bptt_window
    if window:
        inputs, valid = windowed(inputs, window), windowed(valid, window)
        carry = jax.tree.map(lambda c: windowed(c, window)[0], batch.carries)
    if config.recurrent_unroll == "fused":
        outputs = agent.fused_unroll(params, inputs, valid, config.scan_unroll, carry)
    else:
        outputs = unroll(agent, params, inputs, valid, config.scan_unroll, carry)
    if window:
        outputs = jax.tree.map(lambda x: unwindowed(x, batch.inputs.shape[0]), outputs)
    return outputs


def member_loss(config: Rl2Config, agent: RecurrentAgent, params, batch: PpoBatch):
    """One member's PPO loss on its trials, and its parts."""
    dist_params, values = trial_outputs(config, agent, params, batch)
    return ppo_loss(
        agent.dist.log_prob(dist_params, batch.actions),
        batch.log_probs,
        batch.advantages,
        values,
        batch.value_targets,
        agent.dist.entropy(dist_params),
        batch.weights,
        config.clip,
        config.value_coef,
        config.entropy_coef,
    )


def minibatch_tasks(key, active, num_minibatches: int, tasks_per_minibatch: int):
    """Task indices of each minibatch [M, tasks_per_minibatch] and whether each is active.

    Active tasks are dealt round-robin in a random order (task i's draw depends only on
    (key, i)); the remaining slots hold inactive tasks, which weigh nothing.
    """
    num_tasks = active.shape[0]
    draws = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(
        jnp.arange(num_tasks)
    )
    rank = jnp.argsort(jnp.argsort(jnp.where(active > 0, draws, 2.0 + draws)))
    group = jnp.where(active > 0, rank % num_minibatches, num_minibatches)

    def members(j):
        order = jnp.argsort(jnp.where(group == j, rank, num_tasks + rank))
        chosen = order[:tasks_per_minibatch]
        return chosen, (group[chosen] == j).astype(jnp.float32)

    return jax.vmap(members)(jnp.arange(num_minibatches))


def select_tasks(batch: PpoBatch, task_indices, task_active, trials: int) -> PpoBatch:
    """The trials of the chosen tasks (columns of the time-major batch); inactive ones weigh 0."""
    columns = (task_indices[:, None] * trials + jnp.arange(trials)[None, :]).reshape(-1)
    selected = jax.tree.map(lambda x: jnp.take(x, columns, axis=1), batch)
    return selected._replace(weights=selected.weights * jnp.repeat(task_active, trials)[None, :])


def member_minibatches(config: Rl2Config, batch: PpoBatch, active, key) -> PpoBatch:
    """One member's minibatches of an epoch, stacked [M, T, width * trials, ...]: its active
    tasks dealt by `minibatch_tasks`, width = ceil(its slots / M), so a member's active tasks
    fall into the same minibatches, in the same order, whatever padding its layout adds."""
    num_slots = active.shape[0]
    num_minibatches = config.num_minibatches
    task_indices, task_active = minibatch_tasks(
        key, active, num_minibatches, math.ceil(num_slots / num_minibatches)
    )
    return jax.vmap(select_tasks, in_axes=(None, 0, 0, None))(
        batch, task_indices, task_active, config.trials_per_task
    )


def ppo_update(
    config: Rl2Config,
    agent: RecurrentAgent,
    optimizer: optax.GradientTransformation,
    params,
    opt_state,
    batch: PpoBatch,
    active: jax.Array,
    keys: jax.Array,
    axis: TaskAxis,
):
    """`ppo_epochs` epochs of `num_minibatches` steps for every member of the axis at once, each
    on its own trials with its own parameters, optimizer state and minibatch key (`keys`).

    The loss is the sum of the members' losses, so each member's gradient is its own; the
    members step in lockstep (the same number of minibatches each). Returns (params, opt_state,
    metrics of each member)."""
    member_batches = [member_columns(batch, c) for c in axis.member_slices(config.trials_per_task)]
    member_actives = [active[slots] for slots in axis.member_slices()]

    def loss(params, batches):
        losses, diagnostics = zip(
            *(
                member_loss(config, agent, member_params, member_batch)
                for member_params, member_batch in zip(axis.members(params), batches, strict=True)
            ),
            strict=True,
        )
        return functools.reduce(operator.add, losses), axis.from_members(list(diagnostics))

    def minibatches(batches, epoch_keys):
        return [
            member_minibatches(config, member_batch, member_active, key)
            for member_batch, member_active, key in zip(
                batches, member_actives, axis.members(epoch_keys), strict=True
            )
        ]

    epoch_keys = axis.over_members(lambda key: jax.random.split(key, config.ppo_epochs))(keys)
    params, opt_state, diagnostics = minibatch_epochs(
        loss,
        optax.GradientTransformation(optimizer.init, axis.over_members(optimizer.update)),
        params,
        opt_state,
        member_batches,
        jnp.moveaxis(epoch_keys, -2, 0),  # [epochs, (G,) key]
        minibatches if config.num_minibatches > 1 else None,
    )
    return params, opt_state, epoch_metrics(diagnostics)


def iteration_metrics(config: Rl2Config, optim_metrics: dict, episode_means: jax.Array) -> dict:
    """`optim/...` and the training returns from each member's mean episode returns [(G,) E]."""
    metrics = {f"optim/{name}": value for name, value in optim_metrics.items()}
    metrics["train/return"] = jnp.mean(episode_means, axis=-1)
    for e in range(config.episodes_per_trial):
        metrics[f"train/return_episode{e}"] = episode_means[..., e]
    return metrics


def iteration(
    config: Rl2Config,
    env: Env,
    agent: RecurrentAgent,
    optimizer: optax.GradientTransformation,
    samplers: TaskSamplers,
    state: MetaState,
    members: SweepMember,
    axis: TaskAxis,
):
    """One meta-iteration of the axis's member(s): state and members unstacked on the masked
    axis, stacked [G] on the packed one. Returns (state, metrics)."""
    key, task_key, data_key, minibatch_key = axis.split_keys(state.key, 4)
    tasks, slot_keys = axis.task_inputs(samplers.train, members, task_key, data_key)
    trajectories = collect_slots(config, env, agent, state.params, tasks, slot_keys, axis)
    active = axis.active(members)
    batch = ppo_batch(config, trajectories, active, axis)
    params, opt_state, optim_metrics = ppo_update(
        config, agent, optimizer, state.params, state.opt_state, batch, active, minibatch_key, axis
    )
    episode_sums = axis.member_sums(active[:, None] * per_task_returns(config, trajectories))
    episode_means = episode_sums / members.meta_batch_size[..., None]
    metrics = iteration_metrics(config, optim_metrics, episode_means)
    return axis.over_members(next_state)(state, params, opt_state, key), metrics


def evaluate(config: Rl2Config, env: Env, agent: RecurrentAgent, samplers: TaskSamplers, params):
    """Return of each episode of a trial on fresh evaluation tasks; eval/return = the last.

    The evaluation keys are the same at every iteration, as for MAML.
    """
    task_key, data_key = evaluation_keys(config.eval_seed)
    episodes = config.episodes_per_trial
    metrics = {}
    for prefix, sample_tasks in evaluation_sets(samplers, config.eval_train_region).items():
        tasks = sample_tasks(task_key, config.num_eval_tasks)
        per_task = trial_returns(config, env, agent, params, tasks, data_key)
        returns = per_task.mean(axis=0)
        for e in range(episodes):
            metrics[f"{prefix}/return_episode{e}"] = returns[e]
        metrics[f"{prefix}/return"] = returns[-1]
        metrics |= task_group_metrics(env.task_space, prefix, tasks, per_task[:, -1])
        metrics[f"{prefix}/reward_per_step"] = reward_per_step(returns, config.horizon)
    return metrics


def make_rl2(config: Rl2Config, env: Env) -> Algorithm:
    """RL² as the sweep engine runs it.

    `packed_update` serves every setting, minibatches included: each packed member deals its
    own active tasks into its own `num_minibatches` minibatches of ceil(m_g / M) tasks with its
    own key, which puts every active task in the minibatch, and at the place, where the masked
    member puts it (only the zero-weight padding differs), so the layouts agree to float
    tolerance (tests/test_packed_sweep.py).
    """
    agent = rl2_agent(config, env)
    optimizer = rl2_optimizer(config)
    samplers = task_samplers(
        env.task_space, config.train_tasks, config.eval_tasks, config.task_pool_seed
    )
    num_tasks = config.max_meta_batch_size
    steps_per_task = config.trials_per_task * config.episodes_per_trial * config.horizon

    def init(member: SweepMember):
        return initial_state(member, agent.init, optimizer)

    def update(state, member: SweepMember):
        axis = TaskAxis(num_tasks)
        return iteration(config, env, agent, optimizer, samplers, state, member, axis)

    def packed_update(states, members: SweepMember, pack: PackLayout):
        axis = TaskAxis(num_tasks, pack)
        return iteration(config, env, agent, optimizer, samplers, states, members, axis)

    def evaluate_member(state, member: SweepMember):
        del member
        return evaluate(config, env, agent, samplers, state.params)

    def env_steps_per_iteration(member: SweepMember):
        return member.meta_batch_size.astype(jnp.float32) * steps_per_task

    return Algorithm(
        init=init,
        update=update,
        evaluate=evaluate_member,
        env_steps_per_iteration=env_steps_per_iteration,
        loss_metrics=("optim/policy_loss", "optim/value_loss", "train/return"),
        packed_update=packed_update,
        evaluation_tasks=evaluation_task_sets(
            samplers, config.eval_train_region, config.num_eval_tasks, config.eval_seed
        ),
        evaluation_steps=config.episodes_per_trial * config.horizon,
    )
