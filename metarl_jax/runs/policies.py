"""A trained member's policy as functions a user calls, and its adaptation played on tasks.

Three kinds, by how the algorithm adapts (every function is pure and jittable; batched over N
parallel episodes where it takes observations):

- `GradientPolicy` (MAML, MACAW): `act(params, key, obs) -> actions`, and
  `adapt(params, task, key, step=0) -> params`, one inner gradient step: MAML's from
  `rollouts_per_task` episodes of `params` on `task`, at the step size of inner step `step`;
  MACAW's on a batch of the offline data of test task `task` (an index into `tasks`).
- `RecurrentPolicy` (RL²): `start(n) -> (carry, context)` opens a trial of n parallel episodes;
  `act(params, carry, context, key, obs) -> (actions, carry)`; `observe(actions, rewards, dones)
  -> context` is what the next step reads about this one (dones = 1 at an episode's last step:
  the trial goes on into the next episode with the carry).
- `PosteriorPolicy` (PEARL): `prior(key) -> z`, `posterior(params, context, weights, key) -> z`
  (z inferred from context vectors [M, D] weighted [M]; `context_of(transitions)` makes them from
  `rl.Transitions`), `act(params, key, obs, z) -> actions` (in [-1, 1]^A, the `env`'s units).

`env` is the environment the actions are for (PEARL's takes unit actions).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from metarl_jax.algos import macaw, maml, pearl, rl2
from metarl_jax.algos.macaw import MacawConfig
from metarl_jax.algos.maml import MamlConfig
from metarl_jax.algos.pearl_config import PearlConfig
from metarl_jax.algos.rl2 import Rl2Config
from metarl_jax.envs import Env
from metarl_jax.rl.policy import make_policy
from metarl_jax.rl.recurrent import RecurrentAgent, agent_inputs, rollout_trials
from metarl_jax.rl.rollout import episode_keys, run_episodes
from metarl_jax.runs.load import (
    LoadedRun,
    RunError,
    load_run,
    member_config,
    member_indices,
    member_state,
)
from metarl_jax.runs.trajectories import AdaptationTrajectories, episode_labels, step_labels


class GradientPolicy(NamedTuple):
    algo: str
    env: Env
    config: Any
    row: dict  # the member's sweep values
    params: Any
    act: Callable
    adapt: Callable
    tasks: Any = None  # MACAW: the data set's test tasks, which `adapt`'s task indexes


class RecurrentPolicy(NamedTuple):
    algo: str
    env: Env
    config: Any
    row: dict
    params: Any
    start: Callable
    act: Callable
    observe: Callable
    agent: RecurrentAgent


class PosteriorPolicy(NamedTuple):
    algo: str
    env: Env
    config: Any
    row: dict
    params: Any
    prior: Callable
    posterior: Callable
    act: Callable
    context_of: Callable
    networks: Any


def maml_policy(algo: str, config: MamlConfig, env: Env, row: dict, params) -> GradientPolicy:
    policy = make_policy(env, config.hidden_sizes, config.activation)

    def act(params, key, obs):
        return policy.dist.sample(key, policy.apply(params, obs))

    def adapt(params, task, key, step=0):
        batch, _ = maml.collect(config, env, policy, params, task, key)
        return maml.adapt(config, policy, params, batch, maml.inner_step_lr(config, step))

    return GradientPolicy(algo, env, config, row, params, act, adapt)


def macaw_policy(algo: str, config: MacawConfig, env: Env, row: dict, params, data):
    def act(params, key, obs):
        return macaw.policy_actions(config, env, params["policy"], True)(key, obs)

    def adapt(params, task, key, step=0):
        del step  # MACAW's step sizes are learned per parameter, the same at every step
        return macaw.adapt_step(config, env, params, data.test, task, key)

    return GradientPolicy(algo, env, config, row, params, act, adapt, data.test_tasks)


def rl2_policy(algo: str, config: Rl2Config, env: Env, row: dict, params) -> RecurrentPolicy:
    agent = rl2.rl2_agent(config, env)

    def start(n):
        zeros = jnp.zeros((n,))
        return agent.initial_carry((n,)), (jnp.zeros((n, env.action_size)), zeros, zeros)

    def act(params, carry, context, key, obs):
        carry, dist_params, _ = agent.step(params, carry, agent_inputs(obs, *context))
        return agent.dist.sample(key, dist_params), carry

    def observe(actions, rewards, dones):
        return agent.action_features(actions), rewards, jnp.asarray(dones, jnp.float32)

    return RecurrentPolicy(algo, env, config, row, params, start, act, observe, agent)


def pearl_policy(algo: str, config: PearlConfig, env: Env, row: dict, params) -> PosteriorPolicy:
    env = pearl.acting_env(env)
    networks = pearl.pearl_networks(config, env)

    def prior(key):
        return pearl.prior_latents(config, key, 1)[0]

    def posterior(params, context, weights, key):
        return pearl.draw_latent(config, networks, params, context, weights, key)

    def act(params, key, obs, z):
        latents = jnp.broadcast_to(z, (*obs.shape[:-1], z.shape[-1]))
        choose = pearl.policy_actions(
            networks.actor, params["actor"], latents, config.eval_deterministic
        )
        return choose(key, obs)

    def context_of(transitions):
        return pearl.context_vectors(transitions, config.context_next_obs)

    return PosteriorPolicy(
        algo, env, config, row, params, prior, posterior, act, context_of, networks
    )


def policy_of(run: LoadedRun, index: int, config=None):
    """Member `index`'s policy (the run's config with its swept values, unless `config`)."""
    config = member_config(run, index) if config is None else config
    params = member_state(run, index).params
    algo, env, row = run.entry.name, run.env, run.rows[index]
    if isinstance(config, MamlConfig):
        return maml_policy(algo, config, env, row, params)
    if isinstance(config, MacawConfig):
        return macaw_policy(algo, config, env, row, params, run.data)
    if isinstance(config, Rl2Config):
        return rl2_policy(algo, config, env, row, params)
    return pearl_policy(algo, config, env, row, params)


def load_policy(run_dir: str, member: dict | None = None, checkpoint: int | str | None = None):
    """The policy of one member of a run (the first when `member` is None; else the one whose
    sweep values are `member`, e.g. {"seed": 1}), from its latest checkpoint (or iteration
    `checkpoint`, or "best"): a `GradientPolicy`, `RecurrentPolicy` or `PosteriorPolicy`."""
    run = load_run(run_dir, checkpoint)
    found = member_indices(run.rows, member)
    if member is not None and len(found) > 1:
        raise RunError(f"member: {member} matches {len(found)} members; name more sweep values")
    return policy_of(run, found[0])


# ----- playing the adaptation ---------------------------------------------------------------


def _one_episode(env: Env, act, task, key, horizon: int):
    """One episode as [T, ...] arrays (obs, actions, rewards, valid) and its reset key."""
    steps = run_episodes(env, lambda k, o: (act(k, o), ()), task, key, 1, horizon)
    first = lambda x: x[:, 0]
    arrays = (first(steps.obs), first(steps.action), first(steps.reward), first(steps.valid))
    return arrays, episode_keys(key, 1)[0][0]


def _play_gradient(policy: GradientPolicy, task, key, num_stages: int):
    adapt_keys = jax.random.split(jax.random.fold_in(key, 0), num_stages - 1)
    run_keys = jax.random.split(jax.random.fold_in(key, 1), num_stages)

    def step(params, inputs):
        stage, adapt_key = inputs
        params = policy.adapt(params, task, adapt_key, stage)
        return params, params

    _, later = jax.lax.scan(step, policy.params, (jnp.arange(num_stages - 1), adapt_keys))
    stacked = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), policy.params, later)
    env_task = task if policy.tasks is None else jax.tree.map(lambda x: x[task], policy.tasks)

    def episode(params, run_key):
        act = lambda k, o: policy.act(params, k, o)
        return _one_episode(policy.env, act, env_task, run_key, policy.config.horizon)

    return jax.vmap(episode)(stacked, run_keys)


def _play_recurrent(policy: RecurrentPolicy, task, key, num_stages: int):
    horizon = policy.config.horizon
    trial = rollout_trials(
        policy.env, policy.agent, policy.params, task, key, 1, num_stages, horizon
    )
    per_episode = lambda x: x[:, 0].reshape(num_stages, horizon, *x.shape[2:])
    obs = per_episode(trial.inputs)[..., : policy.env.obs_size]
    arrays = (obs, per_episode(trial.actions), per_episode(trial.rewards), per_episode(trial.valid))
    # rollout_trials plays episode e with the e-th of these keys
    reset_keys = jax.vmap(lambda k: episode_keys(k, 1)[0][0])(jax.random.split(key, num_stages))
    return arrays, reset_keys


def _play_posterior(policy: PosteriorPolicy, task, key, num_stages: int):
    config = policy.config

    def episode(context, episode_key):
        context, transitions = pearl.evaluation_episode(
            config, policy.env, policy.networks, policy.params, task, context, episode_key
        )
        first = lambda x: x[:, 0]
        arrays = tuple(
            first(x)
            for x in (transitions.obs, transitions.actions, transitions.rewards, transitions.valid)
        )
        run_key = pearl.evaluation_episode_keys(episode_key)[1]
        return context, (arrays, episode_keys(run_key, 1)[0][0])

    initial = pearl.empty_context(config, policy.env, num_stages)
    _, out = jax.lax.scan(episode, initial, jax.random.split(key, num_stages))
    return out


def play_adaptation(policy, key, tasks, num_stages: int) -> AdaptationTrajectories:
    """One episode per stage on each of `tasks` (leading axis N): a gradient policy's episodes
    with its parameters after 0, 1, ..., num_stages - 1 adaptation steps; a recurrent or
    posterior policy's `num_stages` episodes of one trial. Task i plays with fold_in(key, i).
    MACAW's `tasks` are indices of the data set's test tasks."""
    play = {
        GradientPolicy: _play_gradient,
        RecurrentPolicy: _play_recurrent,
        PosteriorPolicy: _play_posterior,
    }[type(policy)]
    num_tasks = jax.tree.leaves(tasks)[0].shape[0]
    task_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(num_tasks))
    run = jax.jit(jax.vmap(lambda task, k: play(policy, task, k, num_stages)))
    (obs, actions, rewards, valid), reset_keys = run(tasks, task_keys)
    stage_first = lambda x: jnp.swapaxes(x, 0, 1)
    labels = step_labels if isinstance(policy, GradientPolicy) else episode_labels
    if isinstance(policy, GradientPolicy) and policy.tasks is not None:
        tasks = jax.tree.map(lambda x: x[tasks], policy.tasks)
    return AdaptationTrajectories(
        stage_labels=labels(num_stages),
        tasks=tasks,
        obs=stage_first(obs),
        actions=stage_first(actions),
        rewards=stage_first(rewards),
        valid=stage_first(valid),
        reset_keys=stage_first(reset_keys),
    )
