"""PEARL (Rakelly et al., 2019): off-policy meta-RL with a probabilistic context variable z.

Data collection follows oyster's protocol. Before the first iteration every training task gets
`initial_steps` transitions with z from the prior, stored in its encoder buffer and its RL buffer.
One meta-iteration (Algorithm 2 of the seed paper):

    for each of `num_tasks_sample` training tasks T_i drawn at random:
        clear T_i's encoder buffer
        collect `prior_steps` with z ~ N(0, I) (one z per episode) -> encoder and RL buffers
        collect `posterior_steps` (RL buffer only): the first episode with z ~ N(0, I), each later
            one with z ~ q(z | c), c a context batch drawn from T_i's encoder buffer
    repeat `grad_steps` times (a lax.scan):
        draw a meta-batch of training tasks; per task a context c_i from its encoder buffer and an
        RL batch b_i from its RL buffer; z_i ~ q(z | c_i)
        critic + encoder:  L_Q(b_i, z_i) + beta KL(q(z | c_i) || N(0, I))
        actor:             L_pi(b_i, stop_gradient(z_i))
        target critic:     Polyak averaging

The SAC losses are `rl.sac`'s (twin Q with target Q networks; oyster's V network is replaced by
the target-Q form of SAC v2). Buffers are fixed-capacity ring buffers on the device, one per task
slot of a static pool (`rl.replay`).

Sweep axes: the meta-batch size masks tasks of the gradient step (task j weighs 0 for j >= m),
the number of training tasks k restricts every draw of a task slot to the pool's first k slots
(0: all `num_task_buffers`). A member's draws depend only on (key, j) and its k, so a masked
member equals a separate run with that meta-batch size and pool.

Options beyond oyster (off by default; BUILD_NOTES, issue 15): `exploration="uniform_actions"`
(the initial data, the prior phase and evaluation's first episode act uniformly at random; every
posterior-phase episode acts on the posterior), `reward_decoder_weight` (a decoder predicts
reward_scale * r from (s, a, z) and its MSE trains the encoder) and `critic_trains_encoder=False`
(the critic reads z detached: only the decoder and the KL shape the encoder).

Evaluation (oyster's `collect_paths`): per evaluation task, `eval_episodes` episodes in a row; the
first with z from the prior, each later one with z from the posterior on every transition of the
episodes before it. `eval/return_episode{e}`, the headline `eval/return` (the last episode) and
`eval/inference_gain`, the mean posterior episode's return minus the prior episode's.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl_jax.algos import config_checks as checks
from metarl_jax.algos.api import Algorithm, SweepMember
from metarl_jax.algos.meta_training import (
    active_tasks,
    draw_slots,
    evaluation_keys,
    evaluation_sets,
    per_task_keys,
    pool_size,
    task_samplers,
)
from metarl_jax.envs import Env, with_unit_actions
from metarl_jax.nets.context import (
    ContextEncoder,
    RewardDecoder,
    kl_to_standard_normal,
    mean_of_factors,
    product_of_gaussians,
    sample_latent,
)
from metarl_jax.nets.sac import TanhGaussianActor, TwinQ
from metarl_jax.rl import replay, sac
from metarl_jax.rl.rollout import Transitions, collect_transitions, episode_returns
from metarl_jax.tasks import Restriction, draw_pool


@dataclasses.dataclass(frozen=True)
class PearlConfig:
    latent_size: int = 5
    hidden_sizes: tuple[int, ...] = (300, 300, 300)  # actor and critic
    encoder_hidden_sizes: tuple[int, ...] = (200, 200, 200)
    horizon: int = 200
    max_meta_batch_size: int = 4  # tasks per gradient step
    num_task_buffers: int = 2  # slots of the training pool, each with its two buffers
    num_tasks_sample: int = 5  # tasks that collect data per iteration
    initial_steps: int = 2000  # per training task, before the first iteration
    prior_steps: int = 1000  # per sampled task and iteration, z from the prior
    posterior_steps: int = 1000  # per sampled task and iteration, z from the posterior (RL only)
    grad_steps: int = 2000  # per iteration
    batch_size: int = 256  # RL transitions per task and gradient step
    context_batch_size: int = 256  # context transitions per task and gradient step
    replay_capacity: int = 1_000_000  # RL buffer, per task
    gamma: float = 0.99
    tau: float = 0.005
    reward_scale: float = 5.0
    kl_weight: float = 0.1
    lr: float = 3e-4
    alpha: float = 1.0  # entropy temperature (initial value when learned)
    learn_alpha: bool = False
    deterministic_z: bool = False  # z = mean of the factors' means, no KL (no bottleneck)
    policy_mean_reg: float = 1e-3
    policy_std_reg: float = 1e-3
    context_next_obs: bool = False  # context (s, a, r) as oyster, or (s, a, r, s')
    eval_episodes: int = 3  # per evaluation task: the first explores with z from the prior
    eval_deterministic: bool = True  # evaluation acts with the mean action
    # How the prior phase explores (initial data, collection's prior phase, evaluation's first
    # episode): "posterior_sampling" (oyster: the policy with z ~ N(0, I)) or "uniform_actions"
    # (actions uniform in [-1, 1]^A; posterior-phase episodes then all act on the posterior).
    exploration: str = "posterior_sampling"
    # Weight of an auxiliary reward-prediction loss that trains the encoder beside the critic:
    # a decoder predicts reward_scale * r from (s, a, z) on the RL batch (0: oyster, no decoder).
    reward_decoder_weight: float = 0.0
    critic_trains_encoder: bool = True  # oyster; False: only the decoder and the KL train it
    train_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    eval_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    task_pool_seed: int = 0
    num_eval_tasks: int = 40
    eval_train_region: bool = False

    def __post_init__(self):
        checks.layer_sizes(self, "hidden_sizes", "encoder_hidden_sizes")
        checks.positive(
            self,
            "latent_size",
            "horizon",
            "max_meta_batch_size",
            "num_task_buffers",
            "num_tasks_sample",
            "initial_steps",
            "prior_steps",
            "posterior_steps",
            "grad_steps",
            "batch_size",
            "context_batch_size",
            "replay_capacity",
            "reward_scale",
            "lr",
            "alpha",
            "eval_episodes",
            "num_eval_tasks",
        )
        checks.non_negative(
            self, "kl_weight", "reward_decoder_weight", "policy_mean_reg", "policy_std_reg"
        )
        checks.in_unit_interval(self, "gamma", "tau")
        checks.one_of(self, "exploration", ("posterior_sampling", "uniform_actions"))
        if not self.critic_trains_encoder and self.reward_decoder_weight <= 0:
            checks.fail(
                "critic_trains_encoder",
                False,
                "True unless reward_decoder_weight > 0 (else only the KL trains the encoder)",
            )

    def episodes(self, steps: int) -> int:
        """Whole episodes that collect at least `steps` transitions."""
        return math.ceil(steps / self.horizon)

    @property
    def encoder_capacity(self) -> int:
        return self.horizon * max(
            self.episodes(self.initial_steps), self.episodes(self.prior_steps)
        )


class PearlParts(NamedTuple):
    """The pieces of an iteration, for the benchmark and the tests."""

    init_params: Callable  # key -> params {encoder, actor, critic, log_alpha}
    posterior: Callable  # (params, context [N, D], weights [N]) -> (mean, variance)
    collect: Callable  # (params, task, key, latents [N, L], deterministic) -> Transitions [T, N]
    explore: Callable  # (params, task, key, z_key, n) -> n prior-phase episodes, Transitions
    collect_for_task: Callable  # (params, task, key) -> (prior, posterior) Transitions
    losses: Callable  # (params, target_critic, batch, context, task_weights, key) -> (total, parts)
    gradient_steps: Callable  # (train_state, buffers, active_tasks, weights, key) -> ...
    evaluate_task: Callable  # (params, task, key) -> returns [eval_episodes]
    optimizer: optax.GradientTransformation
    actor: TanhGaussianActor  # the networks themselves, for probes of a trained run
    critic: TwinQ


def context_vectors(rows: dict, with_next_obs: bool) -> jax.Array:
    """Transitions (a dict of Transitions' fields) as context vectors (s, a, r[, s'])."""
    parts = [rows["obs"], rows["actions"], rows["rewards"][..., None]]
    if with_next_obs:
        parts.append(rows["next_obs"])
    return jnp.concatenate(parts, axis=-1)


def _as_rows(transitions: Transitions) -> tuple[dict, jax.Array]:
    """[T, N, ...] time-major transitions -> episode-major buffer rows [N * T, ...] (Transitions'
    fields but `valid`) and their validity."""
    rows = jax.tree.map(
        lambda x: jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:]), transitions._asdict()
    )
    valid = rows.pop("valid")
    return rows, valid


def pearl_parts(config: PearlConfig, env: Env) -> PearlParts:
    if env.discrete:
        raise ValueError("PEARL needs a continuous action space")
    env = with_unit_actions(env)  # buffers hold the policy's [-1, 1] actions
    latent = config.latent_size
    obs_size, action_size = env.obs_size, env.action_size
    context_size = obs_size + action_size + 1 + (obs_size if config.context_next_obs else 0)
    encoder = ContextEncoder(latent, config.encoder_hidden_sizes)
    actor = TanhGaussianActor(action_size, config.hidden_sizes)
    critic = TwinQ(config.hidden_sizes)
    decoder = RewardDecoder(config.encoder_hidden_sizes)
    optimizer = optax.adam(config.lr)
    target_entropy = sac.default_target_entropy(action_size)
    num_tasks = config.max_meta_batch_size

    def init_params(key):
        encoder_key, actor_key, critic_key = jax.random.split(key, 3)
        obs_z = jnp.zeros((obs_size + latent,))
        params = {
            "encoder": encoder.init(encoder_key, jnp.zeros((1, context_size))),
            "actor": actor.init(actor_key, obs_z),
            "critic": critic.init(critic_key, obs_z, jnp.zeros((action_size,))),
            "log_alpha": jnp.log(jnp.asarray(config.alpha, jnp.float32)),
        }
        if config.reward_decoder_weight > 0:
            params["decoder"] = decoder.init(
                jax.random.fold_in(key, 3),
                jnp.zeros((obs_size,)),
                jnp.zeros((action_size,)),
                jnp.zeros((latent,)),
            )
        return params

    def posterior(params, context, weights):
        means, variances = encoder.apply(params["encoder"], context)
        if config.deterministic_z:
            return mean_of_factors(means, weights), jnp.zeros((latent,))
        return product_of_gaussians(means, variances, weights)

    def draw_latent(params, context, weights, key):
        mean, variance = posterior(params, context, weights)
        return mean if config.deterministic_z else sample_latent(key, mean, variance)

    def prior_latents(key, n):
        if config.deterministic_z:
            return jnp.zeros((n, latent))
        return jax.random.normal(key, (n, latent))

    uniform_exploration = config.exploration == "uniform_actions"

    def act(actor_params, latents, deterministic):
        def choose(key, obs):
            mean, log_std = actor.apply(actor_params, jnp.concatenate([obs, latents], axis=-1))
            if deterministic:
                return sac.tanh_gaussian_mode(mean)
            return sac.tanh_gaussian_sample(key, mean, log_std)[0]

        return choose

    def act_uniformly(key, obs):
        return jax.random.uniform(key, (*obs.shape[:-1], action_size), minval=-1.0, maxval=1.0)

    def collect(params, task, key, latents, deterministic=False) -> Transitions:
        n = latents.shape[0]
        return collect_transitions(
            env, act(params["actor"], latents, deterministic), task, key, n, config.horizon
        )

    def explore(params, task, key, z_key, n) -> Transitions:
        """n episodes of the prior phase: the policy on prior draws of z, or uniform actions."""
        if uniform_exploration:
            return collect_transitions(env, act_uniformly, task, key, n, config.horizon)
        return collect(params, task, key, prior_latents(z_key, n))

    num_prior = config.episodes(config.prior_steps)
    num_posterior = config.episodes(config.posterior_steps)

    def collect_for_task(params, task, key):
        """One sampled task's data of an iteration: (prior-phase, posterior-phase) transitions.

        The posterior phase draws its contexts from the prior phase's transitions, which is
        exactly what the task's freshly cleared and refilled encoder buffer holds in oyster.
        """
        prior_z_key, prior_key, post_z_key, context_key, post_key = jax.random.split(key, 5)
        prior = explore(params, task, prior_key, prior_z_key, num_prior)
        rows, valid = _as_rows(prior)
        example = jax.tree.map(lambda x: x[0], rows)
        local = replay.add(replay.empty_buffer(example, valid.shape[0]), rows, valid)

        def posterior_latent(context_key, z_key):
            rows = replay.sample(local, context_key, config.context_batch_size)
            context = context_vectors(rows, config.context_next_obs)
            return draw_latent(params, context, jnp.ones(context.shape[:1]), z_key)

        context_keys = per_task_keys(context_key, num_posterior)
        z_keys = per_task_keys(post_z_key, num_posterior)
        latents = jax.vmap(posterior_latent)(context_keys, z_keys)
        if not uniform_exploration:  # oyster: the first episode after clearing z acts on the prior
            first = prior_latents(jax.random.fold_in(post_z_key, num_posterior), 1)
            latents = latents.at[0].set(first[0])
        return prior, collect(params, task, post_key, latents)

    def losses(params, target_critic, batch, context, task_weights, key):
        """Summed SAC and KL losses of a meta-batch: batch [M, B, ...], context [M, N, D]."""
        z_keys, action_keys, next_keys = jnp.moveaxis(
            jax.vmap(lambda k: jax.random.split(k, 3))(per_task_keys(key, num_tasks)), 1, 0
        )
        means, variances = jax.vmap(posterior, in_axes=(None, 0, None))(
            params, context, jnp.ones(context.shape[1:2])
        )
        if config.deterministic_z:
            z, kl = means, jnp.zeros((num_tasks,))
        else:
            z = jax.vmap(sample_latent)(z_keys, means, variances)
            kl = jax.vmap(kl_to_standard_normal)(means, variances)
        z = jnp.broadcast_to(z[:, None, :], (num_tasks, config.batch_size, latent))
        weights = jnp.broadcast_to(task_weights[:, None], z.shape[:2])
        alpha = jnp.exp(params["log_alpha"])
        fixed_alpha = jax.lax.stop_gradient(alpha)

        def policy_sample(actor_params, obs_z, keys):
            mean, log_std = actor.apply(actor_params, obs_z)
            action, log_prob = jax.vmap(sac.tanh_gaussian_sample)(keys, mean, log_std)
            return action, log_prob, mean, log_std

        detached_z = jax.lax.stop_gradient(z)
        critic_z = z if config.critic_trains_encoder else detached_z
        critic_loss, actor_loss, (q1, log_prob, mean, log_std) = sac.actor_critic_losses(
            actor.apply,
            critic.apply,
            params,
            target_critic,
            batch,
            policy_sample,
            next_keys,
            action_keys,
            gamma=config.gamma,
            reward_scale=config.reward_scale,
            alpha=fixed_alpha,
            critic_obs=jnp.concatenate([batch["obs"], critic_z], axis=-1),  # trains q(z|c)
            policy_obs=jnp.concatenate([batch["obs"], detached_z], axis=-1),
            next_obs=jnp.concatenate([batch["next_obs"], detached_z], axis=-1),
            weights=weights,
        )
        kl_loss = config.kl_weight * jnp.sum(task_weights * kl)
        actor_loss = (
            actor_loss
            + config.policy_mean_reg * _weighted_mean(jnp.mean(mean**2, -1), weights)
            + config.policy_std_reg * _weighted_mean(jnp.mean(log_std**2, -1), weights)
        )
        total = critic_loss + kl_loss + actor_loss
        if config.learn_alpha:
            total += sac.temperature_loss(params["log_alpha"], log_prob, target_entropy, weights)
        extra = {}
        if config.reward_decoder_weight > 0:
            predicted = decoder.apply(params["decoder"], batch["obs"], batch["actions"], z)
            error = (predicted - config.reward_scale * batch["rewards"]) ** 2
            extra["reward_decoder_loss"] = _weighted_mean(error, weights)
            total += config.reward_decoder_weight * extra["reward_decoder_loss"]
        diagnostics = {
            **extra,
            "critic_loss": critic_loss,
            "actor_loss": actor_loss,
            "kl": _weighted_mean(kl, task_weights),
            "q_mean": _weighted_mean(q1, weights),
            "entropy": -_weighted_mean(log_prob, weights),
            "alpha": alpha,
            "posterior_variance": _weighted_mean(jnp.mean(variances, -1), task_weights),
        }
        return total, diagnostics

    def gradient_steps(train_state, buffers, active, task_weights, key):
        """`grad_steps` SAC + encoder steps; train_state = (params, target_critic, opt_state)."""

        def gradient_step(carry, step_key):
            params, target_critic, opt_state = carry
            slot_key, context_key, batch_key, loss_key = jax.random.split(step_key, 4)
            slots = draw_slots(slot_key, num_tasks, active)
            context_rows = jax.vmap(replay.sample_slot, in_axes=(None, 0, 0, None))(
                buffers["encoder"],
                slots,
                per_task_keys(context_key, num_tasks),
                config.context_batch_size,
            )
            context = context_vectors(context_rows, config.context_next_obs)
            batch = jax.vmap(replay.sample_slot, in_axes=(None, 0, 0, None))(
                buffers["rl"], slots, per_task_keys(batch_key, num_tasks), config.batch_size
            )
            grads, diagnostics = jax.grad(losses, has_aux=True)(
                params, target_critic, batch, context, task_weights, loss_key
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            target_critic = sac.polyak_update(target_critic, params["critic"], config.tau)
            return (params, target_critic, opt_state), diagnostics

        train_state, diagnostics = jax.lax.scan(
            gradient_step, train_state, jax.random.split(key, config.grad_steps)
        )
        return train_state, jax.tree.map(jnp.mean, diagnostics)

    def evaluate_task(params, task, key):
        """Returns of `eval_episodes` episodes in a row, the context growing after each."""
        capacity = config.eval_episodes * config.horizon

        def episode(carry, episode_key):
            context, weights, e = carry
            z_key, run_key = jax.random.split(episode_key)
            z = draw_latent(params, context, weights, z_key)
            transitions = collect(params, task, run_key, z[None], config.eval_deterministic)
            if uniform_exploration:
                explored = explore(params, task, run_key, z_key, 1)
                transitions = jax.tree.map(
                    lambda a, b: jnp.where(e == 0, a, b), explored, transitions
                )
            rows = context_vectors(transitions._asdict(), config.context_next_obs)[:, 0]  # [T, D]
            start = e * config.horizon
            context = jax.lax.dynamic_update_slice(context, rows, (start, 0))
            weights = jax.lax.dynamic_update_slice(weights, transitions.valid[:, 0], (start,))
            return (context, weights, e + 1), episode_returns(transitions)[0]

        initial = (jnp.zeros((capacity, context_size)), jnp.zeros((capacity,)), 0)
        _, returns = jax.lax.scan(episode, initial, jax.random.split(key, config.eval_episodes))
        return returns

    return PearlParts(
        init_params,
        posterior,
        collect,
        explore,
        collect_for_task,
        losses,
        gradient_steps,
        evaluate_task,
        optimizer,
        actor,
        critic,
    )


def _weighted_mean(x, weights):
    weights = jnp.broadcast_to(weights, x.shape)
    return jnp.sum(x * weights) / jnp.maximum(jnp.sum(weights), 1e-8)


def training_pool(config: PearlConfig, env: Env):
    """The training tasks with buffers: slot i is fixed by (task_pool_seed, i), so a smaller
    pool is a prefix of a larger one."""
    restriction = dataclasses.replace(config.train_tasks, num_tasks=config.num_task_buffers)
    return draw_pool(env.task_space, restriction, config.task_pool_seed)


def buffer_bytes(config: PearlConfig, env: Env) -> int:
    """Device memory of one member's replay buffers (float32 rows)."""
    row = 2 * env.obs_size + env.action_size + 2
    rows = config.num_task_buffers * (config.replay_capacity + config.encoder_capacity)
    return 4 * row * rows


def make_pearl(config: PearlConfig, env: Env) -> Algorithm:
    parts = pearl_parts(config, env)
    pool = training_pool(config, env)
    slots = config.num_task_buffers
    samplers = task_samplers(
        env.task_space, config.train_tasks, config.eval_tasks, config.task_pool_seed
    )
    episodes = config.eval_episodes
    num_initial = config.episodes(config.initial_steps)
    example_row = {
        "obs": jnp.zeros((env.obs_size,)),
        "actions": jnp.zeros((env.action_size,)),
        "rewards": jnp.zeros(()),
        "next_obs": jnp.zeros((env.obs_size,)),
        "dones": jnp.zeros(()),
    }

    def active_slots(member: SweepMember):
        return pool_size(member, slots)

    def task_weights(member: SweepMember):
        return active_tasks(member, config.max_meta_batch_size)

    def stacked_buffers(capacity):
        one = replay.empty_buffer(example_row, capacity)
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (slots, *x.shape)), one)

    def store(buffers, slot, transitions: Transitions):
        rows, valid = _as_rows(transitions)
        return replay.add_to_slot(buffers, slot, rows, valid)

    def init(member: SweepMember):
        """Parameters from the member's seed; every slot's buffers filled with prior-z data."""
        key, init_key, data_key = jax.random.split(jax.random.PRNGKey(member.seed), 3)
        params = parts.init_params(init_key)

        def initial_data(slot_key, task):
            z_key, run_key = jax.random.split(slot_key)
            return parts.explore(params, task, run_key, z_key, num_initial)

        data = jax.vmap(initial_data)(per_task_keys(data_key, slots), pool)
        buffers = {
            "encoder": stacked_buffers(config.encoder_capacity),
            "rl": stacked_buffers(config.replay_capacity),
        }

        def fill(buffers, slot):
            transitions = jax.tree.map(lambda x: x[slot], data)
            return {name: store(b, slot, transitions) for name, b in buffers.items()}, None

        buffers, _ = jax.lax.scan(fill, buffers, jnp.arange(slots))
        return {
            "params": params,
            "target_critic": params["critic"],
            "opt_state": parts.optimizer.init(params),
            "buffers": buffers,
            "key": key,
            "iteration": jnp.asarray(0, jnp.int32),
        }

    def update(state, member: SweepMember):
        key, slot_key, data_key, train_key = jax.random.split(state["key"], 4)
        params, buffers = state["params"], state["buffers"]
        active = active_slots(member)
        sampled = draw_slots(slot_key, config.num_tasks_sample, active)
        tasks = jax.tree.map(lambda leaf: leaf[sampled], pool)
        prior, posterior = jax.vmap(parts.collect_for_task, in_axes=(None, 0, 0))(
            params, tasks, per_task_keys(data_key, config.num_tasks_sample)
        )

        def write(buffers, i):
            slot = sampled[i]
            prior_i, posterior_i = jax.tree.map(lambda x: x[i], (prior, posterior))
            encoder = store(replay.clear_slot(buffers["encoder"], slot), slot, prior_i)
            rl = store(store(buffers["rl"], slot, prior_i), slot, posterior_i)
            return {"encoder": encoder, "rl": rl}, None

        buffers, _ = jax.lax.scan(write, buffers, jnp.arange(config.num_tasks_sample))
        (params, target_critic, opt_state), diagnostics = parts.gradient_steps(
            (params, state["target_critic"], state["opt_state"]),
            buffers,
            active,
            task_weights(member),
            train_key,
        )
        prior_returns = jax.vmap(episode_returns)(prior)
        posterior_returns = jax.vmap(episode_returns)(posterior)
        metrics = {f"optim/{name}": value for name, value in diagnostics.items()}
        metrics["train/return"] = jnp.mean(
            jnp.concatenate([prior_returns.reshape(-1), posterior_returns.reshape(-1)])
        )
        metrics["train/return_prior"] = jnp.mean(prior_returns)
        metrics["train/return_posterior"] = jnp.mean(posterior_returns)
        new_state = {
            "params": params,
            "target_critic": target_critic,
            "opt_state": opt_state,
            "buffers": buffers,
            "key": key,
            "iteration": state["iteration"] + 1,
        }
        return new_state, metrics

    def evaluate(state, member: SweepMember):
        del member
        task_key, data_key = evaluation_keys(state["iteration"])
        metrics = {}
        for prefix, sample_tasks in evaluation_sets(samplers, config.eval_train_region).items():
            tasks = sample_tasks(task_key, config.num_eval_tasks)
            returns = jax.vmap(parts.evaluate_task, in_axes=(None, 0, 0))(
                state["params"], tasks, per_task_keys(data_key, config.num_eval_tasks)
            ).mean(axis=0)
            for e in range(episodes):
                metrics[f"{prefix}/return_episode{e}"] = returns[e]
            metrics[f"{prefix}/return"] = returns[-1]
            if episodes > 1:  # what task inference buys: posterior episodes against the prior one
                metrics[f"{prefix}/inference_gain"] = jnp.mean(returns[1:]) - returns[0]
        return metrics

    steps_per_task = (
        config.episodes(config.prior_steps) + config.episodes(config.posterior_steps)
    ) * config.horizon

    def env_steps_per_iteration(member: SweepMember):
        del member
        return jnp.asarray(config.num_tasks_sample * steps_per_task, jnp.float32)

    def initial_env_steps(member: SweepMember):
        return active_slots(member).astype(jnp.float32) * num_initial * config.horizon

    return Algorithm(
        init=init,
        update=update,
        evaluate=evaluate,
        env_steps_per_iteration=env_steps_per_iteration,
        loss_metrics=("optim/critic_loss", "optim/actor_loss", "train/return"),
        initial_env_steps=initial_env_steps,
    )
