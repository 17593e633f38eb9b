"""Does a trained PEARL run infer tasks? Probes of its latest checkpoint.

    python -m tools.diagnose_pearl --flagfile=RUN/flags.txt --out_dir=RUN

For `--probe_tasks` fresh tasks of the evaluation distribution, each member of the run collects
one episode with z from the prior (evaluation's first episode, deterministic actions) and forms
the posterior from it. It prints, per member:
- probe R²: a ridge regression (and a 5-nearest-neighbour one) from the posterior mean to the
  task's coordinates, fitted on half of the tasks and scored on the other half (1: z tells the
  task, 0: it tells nothing);
- the same 5-NN probe of the task coordinates' norm (for navigation, the goal's distance: what an
  episode that never leaves the start can tell), and how far that first episode travels;
- action and Q sensitivity to z: on the same states and actions, the mean change of the actor's
  mean action and of Q when a task's own posterior z is swapped for another task's, against the
  spread of the action and Q over states;
- the posterior's mean variance and its KL to the prior;
- the context sizes at collection and at evaluation, and the entropy temperature;
- on navigation, the returns of staying at the start and of the fastest approach to the goal on the
  same tasks (the levels a posterior episode sits between).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments import cli
from experiments.app_plumbing import UsageError, run_app
from metarl_jax.algos.meta_training import per_task_keys, task_samplers
from metarl_jax.algos.pearl import (
    acting_env,
    collect,
    context_vectors,
    explore,
    pearl_networks,
    task_posterior,
)
from metarl_jax.baselines import scripted_returns
from metarl_jax.io import checkpoints
from metarl_jax.nets.context import kl_to_standard_normal, latent_variances
from metarl_jax.sweep import init_states, sweep_members
from metarl_jax.tasks import euclidean_coords

FLAGS = cli.FLAGS
cli.flags.DEFINE_integer("probe_tasks", 200, "Fresh evaluation tasks the probes use.")
cli.flags.DEFINE_bool(
    "probe_sampled_actions",
    False,
    "The probed first episode samples its actions (as collection's prior phase) instead of "
    "acting with the mean.",
)


def probe_r2(features: np.ndarray, targets: np.ndarray, ridge: float = 1e-3) -> float:
    """Held-out R² of a ridge regression targets ~ [features, 1], fitted on the first half."""
    x = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    half = len(x) // 2
    a, b = x[:half], targets[:half]
    weights = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ b)
    residual = targets[half:] - x[half:] @ weights
    total = targets[half:] - targets[half:].mean(axis=0)
    return float(1.0 - (residual**2).sum() / (total**2).sum())


def knn_r2(features: np.ndarray, targets: np.ndarray, k: int = 5) -> float:
    """Held-out R² of k-nearest-neighbour regression (a probe that allows a non-linear code)."""
    half = len(features) // 2
    distances = np.linalg.norm(features[half:, None] - features[None, :half], axis=-1)
    nearest = np.argsort(distances, axis=1)[:, :k]
    residual = targets[half:] - targets[:half][nearest].mean(axis=1)
    total = targets[half:] - targets[half:].mean(axis=0)
    return float(1.0 - (residual**2).sum() / (total**2).sum())


def make_diagnosis(spec: cli.RunSpec):
    """diagnose(params, num_tasks, key) -> {probe: value}; built once, compiled once for every
    member of the run (their parameters are an argument)."""
    config, env = spec.config, acting_env(spec.env)
    networks = pearl_networks(config, env)
    samplers = task_samplers(
        env.task_space, config.train_tasks, config.eval_tasks, config.task_pool_seed
    )

    def first_episode(params, task, z_key, run_key):
        if config.exploration == "uniform_actions" or FLAGS.probe_sampled_actions:
            episode = explore(config, env, networks, params, task, run_key, z_key, 1)
        else:  # evaluation's first episode: the prior's z, the mean action
            z = jax.random.normal(z_key, (1, config.latent_size))
            z = jnp.zeros_like(z) if config.deterministic_z else z
            episode = collect(config, env, networks, params, task, run_key, z, True)
        context = context_vectors(episode, config.context_next_obs)[:, 0]
        mean, variance = task_posterior(config, networks, params, context, episode.valid[:, 0])
        return episode.obs[:, 0], episode.actions[:, 0], mean, variance

    first_episodes = jax.jit(jax.vmap(first_episode, in_axes=(None, 0, 0, 0)))
    return lambda params, num_tasks, key: _diagnose(
        spec, networks, samplers, first_episodes, params, num_tasks, key
    )


def _diagnose(spec, networks, samplers, first_episodes, params, num_tasks, key) -> dict:
    config, env = spec.config, spec.env
    task_key, z_key, run_key, swap_key = jax.random.split(key, 4)
    tasks = samplers.eval(task_key, num_tasks)
    obs, actions, means, variances = first_episodes(
        params, tasks, per_task_keys(z_key, num_tasks), per_task_keys(run_key, num_tasks)
    )
    coords = np.asarray(euclidean_coords(env.task_space, tasks))
    linear_r2 = probe_r2(np.asarray(means), coords)
    nearest_r2 = knn_r2(np.asarray(means), coords)
    norm = np.linalg.norm(np.asarray(jax.vmap(env.task_space.coords)(tasks)), axis=1, keepdims=True)
    nearest_norm_r2 = knn_r2(np.asarray(means), norm)
    travel = np.linalg.norm(np.asarray(obs[:, -1] - obs[:, 0]), axis=-1)

    other = jax.random.permutation(swap_key, num_tasks)

    def outputs(z):
        zs = jnp.broadcast_to(z[:, None, :], (*obs.shape[:2], z.shape[-1]))
        inputs = jnp.concatenate([obs, zs], axis=-1)
        mean_action = jnp.tanh(networks.actor.apply(params["actor"], inputs)[0])
        q = networks.critic.apply(params["critic"], inputs, actions)[0]
        return mean_action, q

    own_action, own_q = outputs(means)
    swapped_action, swapped_q = outputs(means[other])
    action_norm = lambda a: jnp.sqrt(jnp.sum(a**2, axis=-1))
    levels = {}
    if env.name == "navigation":  # where the episode returns sit, on these very tasks
        levels = {
            f"{name}_return": value
            for name, value in scripted_returns(env, tasks, run_key, config.horizon).items()
        }
    return {
        **levels,
        "linear_probe_r2": linear_r2,
        "knn_probe_r2": nearest_r2,
        "knn_probe_r2_of_task_norm": nearest_norm_r2,
        "first_episode_travel": float(travel.mean()),
        "action_change_on_z_swap": float(jnp.mean(action_norm(own_action - swapped_action))),
        "action_spread_over_states": float(
            jnp.mean(action_norm(own_action - own_action.mean(axis=(0, 1))))
        ),
        "q_change_on_z_swap": float(jnp.mean(jnp.abs(own_q - swapped_q))),
        "q_spread_over_states": float(jnp.std(own_q)),
        "posterior_variance": float(jnp.mean(latent_variances(means, variances))),
        "posterior_kl": float(jnp.mean(jax.vmap(kl_to_standard_normal)(means, variances))),
        "alpha": float(jnp.exp(params["log_alpha"])),
        "context_at_collection": config.context_batch_size,
        "context_at_evaluation": f"{config.horizon}..{(config.eval_episodes - 1) * config.horizon}",
    }


def main(argv) -> int:
    del argv
    spec = cli.spec_from_flags()
    if spec.algo != "pearl":
        raise UsageError(f"--algo: {spec.algo} is not pearl")
    if (
        not FLAGS.out_dir
        or checkpoints.latest_iteration(os.path.join(FLAGS.out_dir, "checkpoints")) is None
    ):
        raise UsageError(f"--out_dir: {FLAGS.out_dir} holds no checkpoint")
    cli.apply_matmul_precision()
    algorithm = cli.make_algorithm(spec)
    members, rows = sweep_members(spec.seeds, spec.meta_batch_sizes, spec.num_train_tasks)
    directory = os.path.join(FLAGS.out_dir, "checkpoints")
    iteration = checkpoints.latest_iteration(directory)
    manager = checkpoints.checkpoint_manager(directory)
    state = checkpoints.restore(manager, iteration, init_states(algorithm, members))
    print(f"{FLAGS.out_dir}: iteration {iteration}, {FLAGS.probe_tasks} fresh evaluation tasks")
    diagnose = make_diagnosis(spec)
    for i, row in enumerate(rows):
        params = jax.tree.map(lambda x, i=i: x[i], state.params)
        found = diagnose(params, FLAGS.probe_tasks, jax.random.PRNGKey(i))
        label = ", ".join(f"{k}={v}" for k, v in row.items())
        print(
            label
            + ": "
            + ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in found.items()
            )
        )
    return 0


def entry_point():
    run_app(main)


if __name__ == "__main__":
    entry_point()
