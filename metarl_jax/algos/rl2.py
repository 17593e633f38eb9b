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

Smaller meta-batches are a mask over the sampled maximum: every mean is over the valid steps of
active tasks only, and minibatches are drawn among active tasks, so a masked sweep member trains
exactly as a separate run of that meta-batch size.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl_jax.algos import config_checks as checks
from metarl_jax.algos import settings
from metarl_jax.algos.api import Algorithm, PackLayout, SweepMember
from metarl_jax.algos.meta_training import (
    active_tasks,
    evaluation_keys,
    evaluation_sets,
    evaluation_task_sets,
    initial_state,
    member_slices,
    member_sums,
    next_state,
    packed_task_inputs,
    per_task_keys,
    reward_per_step,
    task_group_metrics,
    task_samplers,
    unstacked,
)
from metarl_jax.algos.settings import setting
from metarl_jax.envs import Env
from metarl_jax.rl import (
    RecurrentAgent,
    TrialTrajectory,
    clipped_surrogate_loss,
    episode_returns_per_trial,
    make_recurrent_agent,
    masked_mean,
    normalize,
    rollout_trials,
    trial_gae,
    unroll,
    unwindowed,
    windowed,
)
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
    """Trials of a meta-batch, time-major: fields [T, num_tasks * trials_per_task, ...]."""

    inputs: jax.Array
    actions: jax.Array
    log_probs: jax.Array
    advantages: jax.Array  # normalized
    value_targets: jax.Array
    weights: jax.Array  # valid step of an active task
    carries: tuple | None  # the recurrent state each step read at collection (bptt_window)


class Rl2Parts(NamedTuple):
    """The pieces of an iteration, for benchmarks, tests and the bandit table."""

    agent: RecurrentAgent
    optimizer: optax.GradientTransformation
    collect: Callable  # (params, task, key) -> TrialTrajectory [T, trials_per_task, ...]
    trial_returns: Callable  # (params, tasks, key) -> episode returns [num_tasks, E]
    make_ppo_batch: Callable  # (trajectories [tasks, T, trials, ...], active) -> PpoBatch
    trial_outputs: Callable  # (params, PpoBatch) -> (distribution parameters, values) [T, N, ...]
    # (params, opt_state, batch, active, key[, pack]) -> (params, opt_state, metrics)
    ppo_update: Callable


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


def rl2_parts(config: Rl2Config, env: Env) -> Rl2Parts:
    agent = make_recurrent_agent(env, config.hidden_sizes)
    trials = config.trials_per_task
    num_tasks = config.max_meta_batch_size
    num_minibatches = min(config.num_minibatches, num_tasks)
    tasks_per_minibatch = math.ceil(num_tasks / num_minibatches)
    optimizer = optax.adam(config.outer_lr)
    if config.max_grad_norm > 0:
        optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optimizer)

    def collect(params, task, key, record_carries=config.bptt_window > 0) -> TrialTrajectory:
        """Trials of one task; the states the agent read are kept only for truncated BPTT."""
        return rollout_trials(
            env,
            agent,
            params,
            task,
            key,
            trials,
            config.episodes_per_trial,
            config.horizon,
            record_carries=record_carries,
        )

    def trial_returns(params, tasks, key):
        def one_task(task, task_key):
            trajectory = collect(params, task, task_key, record_carries=False)
            return episode_returns_per_trial(trajectory, config.episodes_per_trial).mean(axis=1)

        num_tasks = jax.tree.leaves(tasks)[0].shape[0]
        return jax.vmap(one_task)(tasks, per_task_keys(key, num_tasks))

    def make_ppo_batch(trajectories: TrialTrajectory, active, pack=None) -> PpoBatch:
        """Task-major trajectories [tasks, T, trials, ...] to time-major [T, tasks * trials];
        advantages normalized over a member's own trials (each packed member's apart)."""
        flat = jax.tree.map(
            lambda x: jnp.moveaxis(x, 0, 1).reshape(x.shape[1], -1, *x.shape[3:]), trajectories
        )
        weights = flat.valid * jnp.repeat(active, trials)[None, :]
        advantages = trial_gae(
            flat.rewards, flat.values, flat.valid, config.gamma, config.gae_lambda
        )
        if pack is None:
            normalized = normalize(advantages, weights)
        else:
            masks = member_columns(pack)[:, None, :]  # [G, 1, N]
            per_member = jax.vmap(normalize, in_axes=(None, 0))(advantages, weights * masks)
            normalized = jnp.sum(per_member * masks, axis=0)
        return PpoBatch(
            inputs=flat.inputs,
            actions=flat.actions,
            log_probs=flat.log_probs,
            advantages=normalized,
            value_targets=advantages + flat.values,
            weights=weights,
            carries=flat.carries,
        )

    def trial_outputs(params, batch: PpoBatch):
        """Distribution parameters and values [T, N, ...]: whole trials from the zero state, or
        windows of bptt_window steps from the states stored at collection."""
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

    def member_columns(pack):
        """[G, N] 1 where a column of the packed batch is one of member g's trials."""
        columns = jnp.repeat(pack.segments, trials)
        return (columns[None, :] == jnp.arange(pack.num_members)[:, None]).astype(jnp.float32)

    def packed_trial_outputs(params, batch: PpoBatch, pack):
        """trial_outputs with each member's trials (contiguous columns of a static width)
        unrolled by its own parameters: one unroll per member, each with whole matmuls (a
        per-slot vmap would turn every step's matmul into many matrix-vector products)."""
        outputs = [
            trial_outputs(member_params, jax.tree.map(lambda x, c=columns: x[:, c], batch))
            for member_params, columns in zip(
                unstacked(params, pack), member_slices(pack, trials), strict=True
            )
        ]
        return jax.tree.map(lambda *parts: jnp.concatenate(parts, axis=1), *outputs)

    def ppo_loss(params, batch: PpoBatch, pack=None):
        """The PPO loss and its parts; with a pack, the sum of the members' losses (each a mean
        over its own trials) and the parts per member."""
        if pack is None:
            return ppo_loss_terms(trial_outputs(params, batch), batch)
        outputs = packed_trial_outputs(params, batch, pack)
        masks = member_columns(pack)[:, None, :]
        losses, diagnostics = jax.vmap(
            lambda mask: ppo_loss_terms(outputs, batch._replace(weights=batch.weights * mask))
        )(masks)
        return jnp.sum(losses), diagnostics

    def ppo_loss_terms(outputs, batch: PpoBatch):
        dist_params, values = outputs
        log_ratio = agent.dist.log_prob(dist_params, batch.actions) - batch.log_probs
        policy_loss = clipped_surrogate_loss(
            log_ratio, batch.advantages, batch.weights, config.clip
        )
        value_loss = 0.5 * masked_mean((values - batch.value_targets) ** 2, batch.weights)
        entropy = masked_mean(agent.dist.entropy(dist_params), batch.weights)
        loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
        diagnostics = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            # the low-variance estimator E[(r - 1) - log r] of KL(old || new)
            "approx_kl": masked_mean(jnp.expm1(log_ratio) - log_ratio, batch.weights),
            "clip_fraction": masked_mean(
                (jnp.abs(jnp.expm1(log_ratio)) > config.clip).astype(jnp.float32), batch.weights
            ),
        }
        return loss, diagnostics

    def ppo_update(params, opt_state, batch: PpoBatch, active, key, pack=None):
        """`ppo_epochs` epochs of minibatch steps; with a pack (one minibatch), every member's
        step on its own loss: stacked parameters and Adam states, metrics per member."""
        update = optimizer.update if pack is None else jax.vmap(optimizer.update)

        def gradient_step(carry, minibatch: PpoBatch):
            params, opt_state = carry
            grads, diagnostics = jax.grad(ppo_loss, has_aux=True)(params, minibatch, pack)
            updates, opt_state = update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), diagnostics

        def epoch(carry, epoch_key):
            if num_minibatches == 1:
                return gradient_step(carry, batch)
            task_indices, task_active = minibatch_tasks(
                epoch_key, active, num_minibatches, tasks_per_minibatch
            )
            minibatches = jax.vmap(select_tasks, in_axes=(None, 0, 0, None))(
                batch, task_indices, task_active, trials
            )
            carry, diagnostics = jax.lax.scan(gradient_step, carry, minibatches)
            return carry, jax.tree.map(jnp.mean, diagnostics)

        (params, opt_state), diagnostics = jax.lax.scan(
            epoch, (params, opt_state), jax.random.split(key, config.ppo_epochs)
        )
        metrics = {name: jnp.mean(values, axis=0) for name, values in diagnostics.items()}
        metrics["approx_kl"] = diagnostics["approx_kl"][-1]
        metrics["clip_fraction"] = diagnostics["clip_fraction"][-1]
        return params, opt_state, metrics

    return Rl2Parts(
        agent, optimizer, collect, trial_returns, make_ppo_batch, trial_outputs, ppo_update
    )


def make_rl2(config: Rl2Config, env: Env) -> Algorithm:
    parts = rl2_parts(config, env)
    agent, optimizer = parts.agent, parts.optimizer
    num_tasks = config.max_meta_batch_size
    episodes = config.episodes_per_trial
    samplers = task_samplers(
        env.task_space, config.train_tasks, config.eval_tasks, config.task_pool_seed
    )

    def init(member: SweepMember):
        return initial_state(member, agent.init, optimizer)

    def update(state, member: SweepMember):
        key, task_key, data_key, minibatch_key = jax.random.split(state.key, 4)
        tasks = samplers.train(member)(task_key, num_tasks)
        trajectories = jax.vmap(parts.collect, in_axes=(None, 0, 0))(
            state.params, tasks, per_task_keys(data_key, num_tasks)
        )
        active = active_tasks(member, num_tasks)
        batch = parts.make_ppo_batch(trajectories, active)
        params, opt_state, optim_metrics = parts.ppo_update(
            state.params, state.opt_state, batch, active, minibatch_key
        )
        episode_sums = jnp.sum(active[:, None] * per_task_returns(trajectories), axis=0)
        metrics = iteration_metrics(optim_metrics, episode_sums / member.meta_batch_size)
        return next_state(state, params, opt_state, key), metrics

    def packed_update(states, members: SweepMember, pack: PackLayout):
        """`update` for the G members of a pack at once, on their sum(m_g) real tasks only."""
        keys = jax.vmap(lambda k: jax.random.split(k, 4))(states.key)
        tasks, data_keys = packed_task_inputs(
            samplers.train, members, keys[:, 1], keys[:, 2], num_tasks, pack
        )
        trajectories = packed_collect(states.params, tasks, data_keys, pack)
        batch = parts.make_ppo_batch(trajectories, jnp.ones(pack.num_slots), pack)
        params, opt_state, optim_metrics = parts.ppo_update(  # one minibatch: no minibatch key
            states.params, states.opt_state, batch, None, keys[0, 3], pack
        )
        episode_sums = member_sums(per_task_returns(trajectories), pack)  # [G, E]
        metrics = iteration_metrics(optim_metrics, episode_sums / members.meta_batch_size[:, None])
        return jax.vmap(next_state)(states, params, opt_state, keys[:, 0]), metrics

    def packed_collect(params, tasks, keys, pack):
        """Each member's trials on its own slots (contiguous, static), with its own parameters."""
        per_member = [
            jax.vmap(parts.collect, in_axes=(None, 0, 0))(
                member_params, jax.tree.map(lambda x, s=slots: x[s], tasks), keys[slots]
            )
            for member_params, slots in zip(
                unstacked(params, pack), member_slices(pack), strict=True
            )
        ]
        return jax.tree.map(lambda *parts: jnp.concatenate(parts, axis=0), *per_member)

    def per_task_returns(trajectories):
        """Mean return of each episode of a trial, per task [tasks, E]."""
        return jax.vmap(lambda t: episode_returns_per_trial(t, episodes).mean(axis=1))(trajectories)

    def iteration_metrics(optim_metrics, episode_means):
        metrics = {f"optim/{name}": value for name, value in optim_metrics.items()}
        metrics["train/return"] = jnp.mean(episode_means, axis=-1)
        for e in range(episodes):
            metrics[f"train/return_episode{e}"] = episode_means[..., e]
        return metrics

    def evaluate(state, member: SweepMember):
        """Return of each episode of a trial on fresh evaluation tasks; eval/return = the last.

        The evaluation keys are the same at every iteration, as for MAML.
        """
        del member
        task_key, data_key = evaluation_keys()
        metrics = {}
        for prefix, sample_tasks in evaluation_sets(samplers, config.eval_train_region).items():
            tasks = sample_tasks(task_key, config.num_eval_tasks)
            per_task = parts.trial_returns(state.params, tasks, data_key)
            returns = per_task.mean(axis=0)
            for e in range(episodes):
                metrics[f"{prefix}/return_episode{e}"] = returns[e]
            metrics[f"{prefix}/return"] = returns[-1]
            metrics |= task_group_metrics(env.task_space, prefix, tasks, per_task[:, -1])
            metrics[f"{prefix}/reward_per_step"] = reward_per_step(returns, config.horizon)
        return metrics

    def env_steps_per_iteration(member: SweepMember):
        per_task = config.trials_per_task * episodes * config.horizon
        return member.meta_batch_size.astype(jnp.float32) * per_task

    return Algorithm(
        init=init,
        update=update,
        evaluate=evaluate,
        env_steps_per_iteration=env_steps_per_iteration,
        loss_metrics=("optim/policy_loss", "optim/value_loss", "train/return"),
        # packs need one minibatch per epoch: a member's minibatch is a share of its own tasks
        packed_update=packed_update if config.num_minibatches == 1 else None,
        evaluation_tasks=evaluation_task_sets(
            samplers, config.eval_train_region, config.num_eval_tasks
        ),
        evaluation_steps=episodes * config.horizon,
    )
