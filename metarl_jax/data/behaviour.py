"""The behaviour agents whose buffers are MACAW's offline data: one learning agent per task.

Continuous control: a single-task SAC agent per task (SAC v2 with twin target critics and an
optional learned temperature, `rl.sac`), all tasks `vmap`ped in one compiled function. One
iteration, for every task whose buffer is not yet full:

    collect `episodes_per_iteration` whole episodes (uniform random actions while the buffer holds
        fewer than `random_steps` transitions, then the policy's samples)
    compute each episode's discounted returns-to-go and append its transitions to the buffer
    if the buffer holds at least `random_steps` transitions:
        `grad_steps_per_step` x (transitions collected) SAC gradient steps (a lax.scan)

The buffer of a task has capacity N = steps_per_task rounded up to whole episodes and never wraps,
so its rows are the task's data in collection order. Episodes that terminate early leave room:
iterations continue until every buffer is full (a task that is full stops learning; the transitions
of its last episode that do not fit are dropped, their returns computed over the whole episode).

The state is a pytree with an explicit iteration counter; the keys of iteration t on task i derive
from (key, i, t), so running in chunks, saving the state and resuming gives the same data.

Bandits: Thompson sampling from a uniform prior (`baselines.rollout("thompson", ...)`), one pull
per episode, as a learning agent's buffer moves from random to good pulls.
"""

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metarl_jax.baselines import rollout as bandit_rollout
from metarl_jax.envs import Env, with_unit_actions
from metarl_jax.io.offline import FIELDS
from metarl_jax.nets.sac import TanhGaussianActor, TwinQ
from metarl_jax.rl import replay, sac
from metarl_jax.rl.returns import discounted_returns
from metarl_jax.rl.rollout import collect_transitions


@dataclasses.dataclass(frozen=True)
class SacAgentConfig:
    hidden_sizes: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    learn_alpha: bool = True  # towards the target entropy -|A|
    alpha: float = 1.0  # the temperature (its initial value when learned)
    reward_scale: float = 1.0
    random_steps: int = 2000  # per task: uniform random actions until the buffer holds this many
    grad_steps_per_step: int = 1
    episodes_per_iteration: int = 1


def transitions_per_task(env: Env, steps_per_task: int) -> int:
    """N: steps_per_task rounded up to whole episodes of the env's horizon."""
    return math.ceil(steps_per_task / env.horizon) * env.horizon


def nominal_iterations(env: Env, config: SacAgentConfig, steps_per_task: int) -> int:
    """Iterations that fill the buffers when no episode ends before the horizon."""
    return math.ceil(
        transitions_per_task(env, steps_per_task) / (env.horizon * config.episodes_per_iteration)
    )


def _networks(env: Env, config: SacAgentConfig):
    if env.discrete:
        raise ValueError(f"SAC behaviour data needs continuous actions; {env.name} is discrete")
    actor = TanhGaussianActor(env.action_size, config.hidden_sizes)
    critic = TwinQ(config.hidden_sizes)
    return actor, critic, optax.adam(config.lr)


def _num_tasks(tasks) -> int:
    return jax.tree.leaves(tasks)[0].shape[0]


@functools.partial(jax.jit, static_argnames=("env", "config", "steps_per_task"))
def sac_data_init(env: Env, config: SacAgentConfig, tasks, key: jax.Array, steps_per_task: int):
    """The state before the first iteration: fresh agents and empty buffers, one per task."""
    actor, critic, optimizer = _networks(env, config)
    num_tasks = _num_tasks(tasks)

    def init_agent(agent_key):
        actor_key, critic_key = jax.random.split(agent_key)
        obs, action = jnp.zeros((env.obs_size,)), jnp.zeros((env.action_size,))
        params = {
            "actor": actor.init(actor_key, obs),
            "critic": critic.init(critic_key, obs, action),
            "log_alpha": jnp.log(jnp.asarray(config.alpha, jnp.float32)),
        }
        return {"params": params, "target_critic": params["critic"], "opt": optimizer.init(params)}

    example = {
        "obs": jnp.zeros((env.obs_size,)),
        "actions": jnp.zeros((env.action_size,)),
        "rewards": jnp.zeros(()),
        "next_obs": jnp.zeros((env.obs_size,)),
        "dones": jnp.zeros(()),
        "returns": jnp.zeros(()),
    }
    buffer = replay.empty_buffer(example, transitions_per_task(env, steps_per_task))
    init_key, run_key = jax.random.split(key)  # agents' parameters apart from their data
    agent_keys = jax.vmap(lambda i: jax.random.fold_in(init_key, i))(jnp.arange(num_tasks))
    return {
        "agents": jax.vmap(init_agent)(agent_keys),
        "buffers": jax.tree.map(lambda x: jnp.broadcast_to(x, (num_tasks, *x.shape)), buffer),
        "tasks": tasks,
        "key": run_key,
        "iteration": jnp.zeros((), jnp.int32),
    }


def _sac_parts(env: Env, config: SacAgentConfig):
    """(collect, gradient_step) of one task's agent."""
    actor, critic, optimizer = _networks(env, config)
    target_entropy = sac.default_target_entropy(env.action_size)
    scaled_env = with_unit_actions(env)  # buffers hold the policy's [-1, 1] actions

    def collect(actor_params, task, key, explore):
        def act(action_key, obs):
            mean, log_std = actor.apply(actor_params, obs)
            policy_action = sac.tanh_gaussian_sample(action_key, mean, log_std)[0]
            uniform = jax.random.uniform(
                jax.random.fold_in(action_key, 1), policy_action.shape, minval=-1.0, maxval=1.0
            )
            return jnp.where(explore, uniform, policy_action)

        return collect_transitions(
            scaled_env, act, task, key, config.episodes_per_iteration, env.horizon
        )

    def sample(actor_params, obs, key):
        mean, log_std = actor.apply(actor_params, obs)
        return (*sac.tanh_gaussian_sample(key, mean, log_std), mean, log_std)

    def loss(params, target_critic, batch, key):
        next_key, action_key = jax.random.split(key)
        fixed_alpha = jax.lax.stop_gradient(jnp.exp(params["log_alpha"]))
        critic_loss, actor_loss, (_, log_prob, _, _) = sac.actor_critic_losses(
            actor.apply,
            critic.apply,
            params,
            target_critic,
            batch,
            sample,
            next_key,
            action_key,
            gamma=config.gamma,
            reward_scale=config.reward_scale,
            alpha=fixed_alpha,
        )
        total = critic_loss + actor_loss
        if config.learn_alpha:
            total += sac.temperature_loss(params["log_alpha"], log_prob, target_entropy)
        return total

    def gradient_step(agent, buffer, key):
        batch_key, loss_key = jax.random.split(key)
        batch = replay.sample(buffer, batch_key, config.batch_size)
        grads = jax.grad(loss)(agent["params"], agent["target_critic"], batch, loss_key)
        updates, opt = optimizer.update(grads, agent["opt"], agent["params"])
        params = optax.apply_updates(agent["params"], updates)
        target = sac.polyak_update(agent["target_critic"], params["critic"], config.tau)
        return {"params": params, "target_critic": target, "opt": opt}

    return collect, gradient_step


def _select(condition, new, old):
    return jax.tree.map(lambda n, o: jnp.where(condition, n, o), new, old)


def _iteration(env: Env, config: SacAgentConfig):
    """One iteration of one task: (agent, buffer, task, task_key, t) -> (agent, buffer, stats)."""
    collect, gradient_step = _sac_parts(env, config)
    max_updates = config.grad_steps_per_step * config.episodes_per_iteration * env.horizon

    def iterate(agent, buffer, task, task_key, iteration):
        capacity = jax.tree.leaves(buffer.data)[0].shape[0]
        collect_key, update_key = jax.random.split(jax.random.fold_in(task_key, iteration))
        active = buffer.size < capacity
        explore = buffer.size < config.random_steps
        transitions = collect(agent["params"]["actor"], task, collect_key, explore)
        returns = discounted_returns(transitions.rewards, transitions.valid, config.gamma)
        fields = {**transitions._asdict(), "returns": returns}
        # time-major [T, E, ...] -> episode-major rows [E * T, ...]
        rows = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:]), fields)
        valid = rows.pop("valid")
        counts = (valid > 0).astype(jnp.int32)
        fits = jnp.cumsum(counts) - counts < capacity - buffer.size
        buffer = replay.add(buffer, rows, (valid > 0) & fits)
        collected = jnp.sum(counts)
        num_updates = jnp.where(
            active & (buffer.size >= config.random_steps),
            config.grad_steps_per_step * collected,
            0,
        )

        def update(agent, step):
            index, step_key = step
            return _select(index < num_updates, gradient_step(agent, buffer, step_key), agent), None

        steps = (jnp.arange(max_updates), jax.random.split(update_key, max_updates))
        agent = jax.lax.scan(update, agent, steps)[0]
        episode_return = jnp.mean(jnp.sum(transitions.rewards, axis=0))
        return agent, buffer, (episode_return, active)

    return iterate


@functools.partial(jax.jit, static_argnames=("env", "config", "num_iterations"))
def sac_data_chunk(state, env: Env, config: SacAgentConfig, num_iterations: int):
    """`num_iterations` iterations on every task: (state, mean episode return per task [K]).

    The mean is over the chunk's iterations in which the task still collected (NaN if none).
    """
    iterate = jax.vmap(_iteration(env, config), in_axes=(0, 0, 0, 0, None))
    num_tasks = _num_tasks(state["tasks"])
    task_keys = jax.vmap(lambda i: jax.random.fold_in(state["key"], i))(jnp.arange(num_tasks))

    def body(carry, _):
        agents, buffers, iteration = carry
        agents, buffers, (returns, active) = iterate(
            agents, buffers, state["tasks"], task_keys, iteration
        )
        return (agents, buffers, iteration + 1), (returns, active)

    carry = (state["agents"], state["buffers"], state["iteration"])
    (agents, buffers, iteration), (returns, active) = jax.lax.scan(
        body, carry, None, length=num_iterations
    )
    weight = active.astype(jnp.float32)
    mean_returns = jnp.where(
        jnp.any(active, axis=0),
        jnp.sum(returns * weight, axis=0) / jnp.maximum(jnp.sum(weight, axis=0), 1.0),
        jnp.nan,
    )
    state = {**state, "agents": agents, "buffers": buffers, "iteration": iteration}
    return state, mean_returns


def sac_data_complete(state) -> bool:
    """Whether every task's buffer is full."""
    buffers = state["buffers"]
    capacity = jax.tree.leaves(buffers.data)[0].shape[1]
    return bool(jnp.all(buffers.size == capacity))


def sac_data_arrays(state) -> dict[str, np.ndarray]:
    """The buffers' rows in collection order, {field: [K, N, ...]} (numpy)."""
    return {name: np.asarray(state["buffers"].data[name]) for name in FIELDS}


def sac_data_chunks(
    state, env: Env, config: SacAgentConfig, chunk_iterations: int
) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield (state, mean returns [K]) after each chunk until every buffer is full."""
    while not sac_data_complete(state):
        state, mean_returns = sac_data_chunk(state, env, config, chunk_iterations)
        yield state, np.asarray(mean_returns)


def sac_data_per_task(
    env: Env,
    config: SacAgentConfig,
    tasks,
    key: jax.Array,
    steps_per_task: int,
    chunk_iterations: int,
    on_chunk: Callable[[int, int, np.ndarray], None] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """SAC behaviour data on every task: (arrays {field: [K, N, ...]}, returns [chunks, K]).

    `on_chunk(iterations_done, nominal_iterations, mean_returns [K])` runs after every chunk.
    """
    state = initial = sac_data_init(env, config, tasks, key, steps_per_task)
    total = nominal_iterations(env, config, steps_per_task)
    history = []
    for state, mean_returns in sac_data_chunks(initial, env, config, chunk_iterations):
        history.append(mean_returns)
        if on_chunk is not None:
            on_chunk(int(state["iteration"]), total, mean_returns)
    return sac_data_arrays(state), np.stack(history)


def bandit_data_per_task(tasks, pulls_per_task: int, key: jax.Array) -> dict[str, np.ndarray]:
    """Thompson sampling from scratch on every bandit task, one pull per episode:
    {field: [K, N, ...]} with zero observations, dones 1 and returns = rewards."""
    arms, rewards = bandit_rollout("thompson", tasks, pulls_per_task, key)
    rewards = np.asarray(rewards, np.float32)
    zeros = np.zeros((*rewards.shape, 1), np.float32)
    return {
        "obs": zeros,
        "actions": np.asarray(arms, np.int32),
        "rewards": rewards,
        "next_obs": zeros.copy(),
        "dones": np.ones_like(rewards),
        "returns": rewards.copy(),
    }
