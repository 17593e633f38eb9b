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

The losses are `algos.pearl_losses`'s, on `rl.sac`'s SAC maths (twin Q with target Q networks;
oyster's V network is replaced by the target-Q form of SAC v2). Buffers are fixed-capacity ring
buffers on the device, one per task slot of a static pool (`rl.replay`).

Sweep axes: the meta-batch size masks tasks of the gradient step (task j weighs 0 for j >= m),
the number of training tasks k restricts every draw of a task slot to the pool's first k slots
(0: all `num_task_slots`). A member's draws depend only on (key, j) and its k, so a masked
member equals a separate run with that meta-batch size and pool.

Options beyond oyster (off by default; BUILD_NOTES, "Why PEARL does not generalise over 40
navigation goals"): `exploration="uniform_actions"`
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
import functools
from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from metarl_jax.algos.api import Algorithm, SweepMember
from metarl_jax.algos.meta_training import (
    active_tasks,
    draw_slots,
    evaluation_keys,
    evaluation_sets,
    evaluation_task_sets,
    per_task_keys,
    pool_size,
    reward_per_step,
    task_group_metrics,
    task_samplers,
)
from metarl_jax.algos.pearl_config import PearlConfig
from metarl_jax.algos.pearl_losses import PearlNetworks, meta_batch_loss, posterior
from metarl_jax.envs import Env, with_unit_actions
from metarl_jax.nets.context import (
    ContextEncoder,
    RankOneContextEncoder,
    RewardDecoder,
    sample_latent,
)
from metarl_jax.nets.sac import TanhGaussianActor, TwinQ
from metarl_jax.rl import replay, sac
from metarl_jax.rl.rollout import Transitions, collect_transitions, episode_returns
from metarl_jax.tasks import draw_pool

ENCODERS = {"diagonal": ContextEncoder, "rank_one": RankOneContextEncoder}


@flax.struct.dataclass
class TaskBuffers:
    """Both ring buffers of every slot of the training pool, stacked over the slots: the
    encoder's contexts (cleared and refilled at each draw of the task) and the RL batches."""

    encoder: replay.ReplayBuffer
    rl: replay.ReplayBuffer


@flax.struct.dataclass
class PearlState:
    """One sweep member's training state. The fields carry the names of the dict that held it
    before, so a checkpoint saved in either layout restores into it."""

    params: dict  # {encoder, actor, critic, log_alpha[, decoder]}
    target_critic: dict
    opt_state: optax.OptState
    buffers: TaskBuffers
    key: jax.Array
    iteration: jax.Array


# ----- networks and the latent z ------------------------------------------------------------
# `env` below acts in [-1, 1]^A (`with_unit_actions`), as the policy does.


def acting_env(env: Env) -> Env:
    """The env every function below takes: actions in [-1, 1]^A, as the policy acts and the
    buffers hold them."""
    if env.discrete:
        raise ValueError("PEARL needs a continuous action space")
    return with_unit_actions(env)


def pearl_networks(config: PearlConfig, env: Env) -> PearlNetworks:
    return PearlNetworks(
        encoder=ENCODERS[config.posterior_family](config.latent_size, config.encoder_hidden_sizes),
        actor=TanhGaussianActor(env.action_size, config.hidden_sizes),
        critic=TwinQ(config.hidden_sizes),
        decoder=RewardDecoder(config.encoder_hidden_sizes),
    )


def pearl_losses_fn(config: PearlConfig, env: Env, networks: PearlNetworks) -> Callable:
    """(params, target_critic, batch, context, weights, key) -> (total, diagnostics): the meta-batch
    loss of `algos.pearl_losses` with the config's settings."""
    return functools.partial(
        meta_batch_loss,
        networks,
        target_entropy=sac.default_target_entropy(env.action_size),
        gamma=config.gamma,
        reward_scale=config.reward_scale,
        kl_weight=config.kl_weight,
        policy_mean_reg=config.policy_mean_reg,
        policy_std_reg=config.policy_std_reg,
        reward_decoder_weight=config.reward_decoder_weight,
        deterministic_z=config.deterministic_z,
        posterior_family=config.posterior_family,
        critic_trains_encoder=config.critic_trains_encoder,
        learn_alpha=config.learn_alpha,
    )


def context_size(config: PearlConfig, env: Env) -> int:
    """Width of a context vector (s, a, r[, s'])."""
    return env.obs_size + env.action_size + 1 + (env.obs_size if config.context_next_obs else 0)


def init_params(config: PearlConfig, env: Env, networks: PearlNetworks, key) -> dict:
    encoder_key, actor_key, critic_key = jax.random.split(key, 3)
    obs_z = jnp.zeros((env.obs_size + config.latent_size,))
    params = {
        "encoder": networks.encoder.init(encoder_key, jnp.zeros((1, context_size(config, env)))),
        "actor": networks.actor.init(actor_key, obs_z),
        "critic": networks.critic.init(critic_key, obs_z, jnp.zeros((env.action_size,))),
        "log_alpha": jnp.log(jnp.asarray(config.alpha, jnp.float32)),
    }
    if config.reward_decoder_weight > 0:
        params["decoder"] = networks.decoder.init(
            jax.random.fold_in(key, 3),
            jnp.zeros((env.obs_size,)),
            jnp.zeros((env.action_size,)),
            jnp.zeros((config.latent_size,)),
        )
    return params


def task_posterior(config: PearlConfig, networks: PearlNetworks, params, context, weights):
    """q(z | c) as (mean, variance) for a context [N, D] with weights [N]."""
    return posterior(
        networks.encoder.apply,
        params["encoder"],
        context,
        weights,
        config.deterministic_z,
        config.posterior_family,
    )


def draw_latent(config: PearlConfig, networks: PearlNetworks, params, context, weights, key):
    """z ~ q(z | c) (its mean when z is deterministic)."""
    mean, variance = task_posterior(config, networks, params, context, weights)
    return mean if config.deterministic_z else sample_latent(key, mean, variance)


def prior_latents(config: PearlConfig, key, n: int):
    """n draws of z ~ N(0, I) (the prior's mean, 0, when z is deterministic)."""
    if config.deterministic_z:
        return jnp.zeros((n, config.latent_size))
    return jax.random.normal(key, (n, config.latent_size))


def context_vectors(transitions: Transitions, with_next_obs: bool) -> jax.Array:
    """Transitions [..., fields] as context vectors (s, a, r[, s'])."""
    parts = [transitions.obs, transitions.actions, transitions.rewards[..., None]]
    if with_next_obs:
        parts.append(transitions.next_obs)
    return jnp.concatenate(parts, axis=-1)


# ----- acting and collecting ----------------------------------------------------------------


def policy_actions(actor: TanhGaussianActor, actor_params, latents, deterministic: bool):
    """choose(key, obs [N, S]) -> actions [N, A] of the policy on (s, z), episode i with z_i."""

    def choose(key, obs):
        mean, log_std = actor.apply(actor_params, jnp.concatenate([obs, latents], axis=-1))
        if deterministic:
            return sac.tanh_gaussian_mode(mean)
        return sac.tanh_gaussian_sample(key, mean, log_std)[0]

    return choose


def uniform_actions(action_size: int):
    """choose(key, obs [N, S]) -> actions [N, A] uniform in [-1, 1]^A."""

    def choose(key, obs):
        return jax.random.uniform(key, (*obs.shape[:-1], action_size), minval=-1.0, maxval=1.0)

    return choose


def collect(
    config: PearlConfig,
    env: Env,
    networks: PearlNetworks,
    params,
    task,
    key,
    latents,
    deterministic=False,
) -> Transitions:
    """One episode per latent [N, L] on `task`, the policy acting on (s, z_i)."""
    choose = policy_actions(networks.actor, params["actor"], latents, deterministic)
    return collect_transitions(env, choose, task, key, latents.shape[0], config.horizon)


def explore(config: PearlConfig, env: Env, networks: PearlNetworks, params, task, key, z_key, n):
    """n episodes of the prior phase: the policy on prior draws of z, or uniform actions."""
    if config.exploration == "uniform_actions":
        return collect_transitions(
            env, uniform_actions(env.action_size), task, key, n, config.horizon
        )
    return collect(config, env, networks, params, task, key, prior_latents(config, z_key, n))


def collect_for_task(config: PearlConfig, env: Env, networks: PearlNetworks, params, task, key):
    """One sampled task's data of an iteration: (prior-phase, posterior-phase) transitions."""
    prior_z_key, prior_key, post_z_key, context_key, post_key = jax.random.split(key, 5)
    prior = explore(
        config,
        env,
        networks,
        params,
        task,
        prior_key,
        prior_z_key,
        config.episodes(config.prior_steps),
    )
    latents = posterior_phase_latents(config, networks, params, prior, context_key, post_z_key)
    return prior, collect(config, env, networks, params, task, post_key, latents)


def posterior_phase_latents(
    config: PearlConfig, networks: PearlNetworks, params, prior, context_key, z_key
):
    """z of each posterior-phase episode, from a context batch of the prior phase's transitions:
    exactly what the task's freshly cleared and refilled encoder buffer holds in oyster. With
    posterior sampling the first episode acts on the prior (oyster clears z first)."""
    num_posterior = config.episodes(config.posterior_steps)
    rows, valid = _as_rows(prior)
    example = jax.tree.map(lambda x: x[0], rows)
    local = replay.add(replay.empty_buffer(example, valid.shape[0]), rows, valid)

    def posterior_latent(context_key, z_key):
        rows = replay.sample(local, context_key, config.context_batch_size)
        context = context_vectors(stored_transitions(rows), config.context_next_obs)
        return draw_latent(config, networks, params, context, jnp.ones(context.shape[:1]), z_key)

    context_keys = per_task_keys(context_key, num_posterior)
    z_keys = per_task_keys(z_key, num_posterior)
    latents = jax.vmap(posterior_latent)(context_keys, z_keys)
    if config.exploration != "uniform_actions":
        first = prior_latents(config, jax.random.fold_in(z_key, num_posterior), 1)
        latents = latents.at[0].set(first[0])
    return latents


def _as_rows(transitions: Transitions) -> tuple[dict, jax.Array]:
    """[T, N, ...] time-major transitions -> episode-major buffer rows [N * T, ...] (a dict of
    Transitions' fields but `valid`: the buffers' layout, which checkpoints hold) and their
    validity."""
    rows = jax.tree.map(
        lambda x: jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:]), transitions._asdict()
    )
    valid = rows.pop("valid")
    return rows, valid


def stored_transitions(rows: dict) -> Transitions:
    """Rows sampled from a buffer as Transitions: only valid transitions are stored."""
    return Transitions(**rows, valid=jnp.ones(rows["rewards"].shape))


# ----- the gradient steps -------------------------------------------------------------------


def meta_batch(config: PearlConfig, buffers: TaskBuffers, active, slot_key, context_key, batch_key):
    """(RL batch [M, B, ...], context [M, N, D]) of M task slots drawn among the first `active`:
    each task's context from its encoder buffer, its RL batch from its RL buffer."""
    num_tasks = config.max_meta_batch_size
    slots = draw_slots(slot_key, num_tasks, active)
    sample = jax.vmap(replay.sample_slot, in_axes=(None, 0, 0, None))
    context_rows = sample(
        buffers.encoder, slots, per_task_keys(context_key, num_tasks), config.context_batch_size
    )
    batch = sample(buffers.rl, slots, per_task_keys(batch_key, num_tasks), config.batch_size)
    context = context_vectors(stored_transitions(context_rows), config.context_next_obs)
    return stored_transitions(batch), context


def gradient_steps(
    config: PearlConfig,
    optimizer,
    losses,
    train_state,
    buffers: TaskBuffers,
    active,
    task_weights,
    key,
):
    """`grad_steps` SAC + encoder steps (a lax.scan); train_state = (params, target_critic,
    opt_state); diagnostics averaged over the steps."""

    def gradient_step(carry, step_key):
        params, target_critic, opt_state = carry
        slot_key, context_key, batch_key, loss_key = jax.random.split(step_key, 4)
        batch, context = meta_batch(config, buffers, active, slot_key, context_key, batch_key)
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


# ----- evaluation ---------------------------------------------------------------------------


def empty_context(config: PearlConfig, env: Env, num_episodes: int):
    """(context [E * T, D], weights [E * T], episodes so far): room for `num_episodes` episodes."""
    capacity = num_episodes * config.horizon
    return jnp.zeros((capacity, context_size(config, env))), jnp.zeros((capacity,)), 0


def evaluation_episode_keys(episode_key) -> tuple[jax.Array, jax.Array]:
    """(z key, key of the episode's `collect`) of an evaluation episode."""
    return jax.random.split(episode_key)


def evaluation_episode(
    config: PearlConfig, env: Env, networks: PearlNetworks, params, task, context, episode_key
):
    """One episode of an evaluation trial: z from the posterior of the context so far (the prior
    while it is empty), then the context with the episode appended: (context, transitions)."""
    context, weights, e = context
    z_key, run_key = evaluation_episode_keys(episode_key)
    z = draw_latent(config, networks, params, context, weights, z_key)
    transitions = collect(
        config, env, networks, params, task, run_key, z[None], config.eval_deterministic
    )
    if config.exploration == "uniform_actions":
        explored = explore(config, env, networks, params, task, run_key, z_key, 1)
        transitions = jax.tree.map(lambda a, b: jnp.where(e == 0, a, b), explored, transitions)
    rows = context_vectors(transitions, config.context_next_obs)[:, 0]  # [T, D]
    start = e * config.horizon
    context = jax.lax.dynamic_update_slice(context, rows, (start, 0))
    weights = jax.lax.dynamic_update_slice(weights, transitions.valid[:, 0], (start,))
    return (context, weights, e + 1), transitions


def evaluate_task(config: PearlConfig, env: Env, networks: PearlNetworks, params, task, key):
    """Returns of `eval_episodes` episodes in a row, the context growing after each."""

    def episode(context, episode_key):
        context, transitions = evaluation_episode(
            config, env, networks, params, task, context, episode_key
        )
        return context, episode_returns(transitions)[0]

    initial = empty_context(config, env, config.eval_episodes)
    _, returns = jax.lax.scan(episode, initial, jax.random.split(key, config.eval_episodes))
    return returns


# ----- the algorithm: buffers per slot, one meta-iteration, evaluation ----------------------


def training_pool(config: PearlConfig, env: Env):
    """The training tasks with buffers: slot i is fixed by (task_pool_seed, i), so a smaller
    pool is a prefix of a larger one."""
    restriction = dataclasses.replace(config.train_tasks, num_tasks=config.num_task_slots)
    return draw_pool(env.task_space, restriction, config.task_pool_seed)


def buffer_bytes(config: PearlConfig, env: Env) -> int:
    """Device memory of one member's replay buffers (float32 rows)."""
    row = 2 * env.obs_size + env.action_size + 2
    rows = config.num_task_slots * (config.replay_capacity + config.encoder_capacity)
    return 4 * row * rows


def make_pearl(config: PearlConfig, env: Env) -> Algorithm:
    env = acting_env(env)
    networks = pearl_networks(config, env)
    optimizer = optax.adam(config.sac_lr)
    losses = pearl_losses_fn(config, env, networks)
    pool = training_pool(config, env)
    samplers = task_samplers(
        env.task_space, config.train_tasks, config.eval_tasks, config.task_pool_seed
    )

    def init(member: SweepMember) -> PearlState:
        return init_state(config, env, networks, optimizer, pool, member)

    def update(state: PearlState, member: SweepMember):
        return meta_iteration(config, env, networks, optimizer, losses, pool, state, member)

    def evaluate(state: PearlState, member: SweepMember):
        del member
        return evaluation_metrics(config, env, networks, samplers, state.params)

    steps_per_task = (
        config.episodes(config.prior_steps) + config.episodes(config.posterior_steps)
    ) * config.horizon

    def env_steps_per_iteration(member: SweepMember):
        del member
        return jnp.asarray(config.num_tasks_sample * steps_per_task, jnp.float32)

    def initial_env_steps(member: SweepMember):
        active = pool_size(member, config.num_task_slots).astype(jnp.float32)
        return active * config.episodes(config.initial_steps) * config.horizon

    return Algorithm(
        init=init,
        update=update,
        evaluate=evaluate,
        env_steps_per_iteration=env_steps_per_iteration,
        loss_metrics=("optim/critic_loss", "optim/actor_loss", "train/return"),
        initial_env_steps=initial_env_steps,
        evaluation_tasks=evaluation_task_sets(
            samplers, config.eval_train_region, config.num_eval_tasks, config.eval_seed
        ),
        evaluation_steps=config.eval_episodes * config.horizon,
    )


def init_state(
    config: PearlConfig, env: Env, networks: PearlNetworks, optimizer, pool, member
) -> PearlState:
    """Parameters from the member's seed; every slot's buffers filled with prior-phase data."""
    key, init_key, data_key = jax.random.split(jax.random.PRNGKey(member.seed), 3)
    params = init_params(config, env, networks, init_key)
    return PearlState(
        params=params,
        target_critic=params["critic"],
        opt_state=optimizer.init(params),
        buffers=initial_buffers(config, env, networks, pool, params, data_key),
        key=key,
        iteration=jnp.asarray(0, jnp.int32),
    )


def empty_buffers(config: PearlConfig, env: Env) -> TaskBuffers:
    example_row = {
        "obs": jnp.zeros((env.obs_size,)),
        "actions": jnp.zeros((env.action_size,)),
        "rewards": jnp.zeros(()),
        "next_obs": jnp.zeros((env.obs_size,)),
        "dones": jnp.zeros(()),
    }

    def stacked(capacity):
        one = replay.empty_buffer(example_row, capacity)
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (config.num_task_slots, *x.shape)), one)

    return TaskBuffers(encoder=stacked(config.encoder_capacity), rl=stacked(config.replay_capacity))


def store(buffer: replay.ReplayBuffer, slot, transitions: Transitions) -> replay.ReplayBuffer:
    """Append a slot's valid transitions to its ring buffer, episode by episode."""
    rows, valid = _as_rows(transitions)
    return replay.add_to_slot(buffer, slot, rows, valid)


def initial_buffers(config: PearlConfig, env: Env, networks: PearlNetworks, pool, params, key):
    """oyster's initial data: `initial_steps` of prior-phase episodes per slot, into both of its
    buffers."""
    slots = config.num_task_slots

    def initial_data(slot_key, task):
        z_key, run_key = jax.random.split(slot_key)
        episodes = config.episodes(config.initial_steps)
        return explore(config, env, networks, params, task, run_key, z_key, episodes)

    data = jax.vmap(initial_data)(per_task_keys(key, slots), pool)

    def fill(buffers: TaskBuffers, slot):
        transitions = jax.tree.map(lambda x: x[slot], data)
        return TaskBuffers(
            encoder=store(buffers.encoder, slot, transitions),
            rl=store(buffers.rl, slot, transitions),
        ), None

    buffers, _ = jax.lax.scan(fill, empty_buffers(config, env), jnp.arange(slots))
    return buffers


def meta_iteration(
    config: PearlConfig,
    env: Env,
    networks: PearlNetworks,
    optimizer,
    losses,
    pool,
    state: PearlState,
    member,
):
    """Collect on `num_tasks_sample` drawn tasks, write their buffers, take the gradient steps."""
    key, slot_key, data_key, train_key = jax.random.split(state.key, 4)
    active = pool_size(member, config.num_task_slots)
    sampled = draw_slots(slot_key, config.num_tasks_sample, active)
    tasks = jax.tree.map(lambda leaf: leaf[sampled], pool)
    for_task = functools.partial(collect_for_task, config, env, networks)
    prior, posterior = jax.vmap(for_task, in_axes=(None, 0, 0))(
        state.params, tasks, per_task_keys(data_key, config.num_tasks_sample)
    )
    buffers = write_collected(state.buffers, sampled, prior, posterior, config.posterior_in_context)
    (params, target_critic, opt_state), diagnostics = gradient_steps(
        config,
        optimizer,
        losses,
        (state.params, state.target_critic, state.opt_state),
        buffers,
        active,
        active_tasks(member, config.max_meta_batch_size),
        train_key,
    )
    metrics = {f"optim/{name}": value for name, value in diagnostics.items()}
    metrics |= collection_returns(prior, posterior)
    new_state = PearlState(
        params=params,
        target_critic=target_critic,
        opt_state=opt_state,
        buffers=buffers,
        key=key,
        iteration=state.iteration + 1,
    )
    return new_state, metrics


def write_collected(
    buffers: TaskBuffers, sampled, prior, posterior, posterior_in_context=False
) -> TaskBuffers:
    """In draw order (a task drawn twice is cleared twice, as in oyster): the drawn slot's encoder
    buffer is cleared and holds its prior phase (and its posterior phase with
    `posterior_in_context`); its RL buffer gains both phases."""

    def write(buffers: TaskBuffers, i):
        slot = sampled[i]
        prior_i, posterior_i = jax.tree.map(lambda x: x[i], (prior, posterior))
        encoder = store(replay.clear_slot(buffers.encoder, slot), slot, prior_i)
        if posterior_in_context:
            encoder = store(encoder, slot, posterior_i)
        rl = store(store(buffers.rl, slot, prior_i), slot, posterior_i)
        return TaskBuffers(encoder=encoder, rl=rl), None

    buffers, _ = jax.lax.scan(write, buffers, jnp.arange(sampled.shape[0]))
    return buffers


def collection_returns(prior: Transitions, posterior: Transitions) -> dict:
    """Mean episode returns of an iteration's collection: both phases, and each alone."""
    prior_returns = jax.vmap(episode_returns)(prior)
    posterior_returns = jax.vmap(episode_returns)(posterior)
    return {
        "train/return": jnp.mean(
            jnp.concatenate([prior_returns.reshape(-1), posterior_returns.reshape(-1)])
        ),
        "train/return_prior": jnp.mean(prior_returns),
        "train/return_posterior": jnp.mean(posterior_returns),
    }


def evaluation_metrics(config: PearlConfig, env: Env, networks: PearlNetworks, samplers, params):
    """Mean return of each evaluation episode on every evaluation set; the headline is the last
    episode's, and `inference_gain` the posterior episodes' mean minus the prior episode's."""
    task_key, data_key = evaluation_keys(config.eval_seed)
    metrics = {}
    for prefix, sample_tasks in evaluation_sets(samplers, config.eval_train_region).items():
        tasks = sample_tasks(task_key, config.num_eval_tasks)
        evaluate = functools.partial(evaluate_task, config, env, networks)
        per_task = jax.vmap(evaluate, in_axes=(None, 0, 0))(
            params, tasks, per_task_keys(data_key, config.num_eval_tasks)
        )
        returns = per_task.mean(axis=0)
        metrics |= task_group_metrics(env.task_space, prefix, tasks, per_task[:, -1])
        for e in range(config.eval_episodes):
            metrics[f"{prefix}/return_episode{e}"] = returns[e]
        metrics[f"{prefix}/return"] = returns[-1]
        metrics[f"{prefix}/reward_per_step"] = reward_per_step(returns, config.horizon)
        if config.eval_episodes > 1:
            metrics[f"{prefix}/inference_gain"] = jnp.mean(returns[1:]) - returns[0]
    return metrics
