"""Can each posterior family code the task from one episode? A supervised check.

    python -m tools.encoder_families --env=navigation --horizon=20
    python -m tools.encoder_families --env=ant_dir            # MJX: slow to compile on CPUs

PEARL's encoder has to turn a context of transitions (s, a, r) into a posterior over z that tells
the task. This check takes the learning problem of RL out of the question: for every posterior
family it trains PEARL's encoder, with a small readout MLP on the posterior mean, to regress the
task from the context of one episode of uniform random actions (PEARL's `uniform_actions`
exploration), on --train_tasks tasks of the full distribution, and prints the R² on --test_tasks
other tasks (1: the posterior mean tells the task; 0: nothing). Directions (angles) are regressed
as unit vectors. A family that scores clearly lower cannot add up the evidence the transitions
hold: on navigation a reward is one linear equation in the goal, which axis-aligned Gaussian
factors cannot combine and rank-one factors can (BUILD_NOTES, PEARL).
"""

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import flags

from experiments.app_plumbing import UsageError, check_one_of, check_positive, int_list, run_app
from metarl_jax.algos.meta_training import per_task_keys
from metarl_jax.algos.pearl import ENCODERS, context_vectors, uniform_actions
from metarl_jax.algos.pearl_config import POSTERIOR_FAMILIES
from metarl_jax.algos.pearl_losses import posterior
from metarl_jax.envs import ENV_NAMES, make_env, with_unit_actions
from metarl_jax.rl.rollout import collect_transitions
from metarl_jax.tasks import euclidean_coords

flags.DEFINE_string("env", "navigation", "Environment (continuous actions).")
flags.DEFINE_integer("horizon", 0, "Episode length (0: the environment's).")
flags.DEFINE_list("families", list(POSTERIOR_FAMILIES), "Posterior families to compare.")
flags.DEFINE_integer("latent_size", 5, "Size of z.")
flags.DEFINE_list("encoder_hidden_sizes", ["200", "200", "200"], "The encoder's MLP.")
flags.DEFINE_integer("train_tasks", 1024, "Tasks (one episode each) the encoders train on.")
flags.DEFINE_integer("test_tasks", 512, "Other tasks the R² is measured on.")
flags.DEFINE_integer("steps", 1500, "Adam steps of the regression (BUILD_NOTES' figures: 1,500).")
flags.DEFINE_integer("batch_tasks", 64, "Tasks per Adam step.")
flags.DEFINE_float("lr", 1e-3, "Adam's step size.")
flags.DEFINE_integer("seed", 0, "Seed of tasks, episodes and initial weights.")
FLAGS = flags.FLAGS
READOUT_SIZES = (64, 64)


def random_play_contexts(env, tasks, key, horizon: int) -> tuple[jax.Array, jax.Array]:
    """One episode of uniform actions per task: contexts [tasks, T, D] and valid [tasks, T]."""
    act = uniform_actions(env.action_size)

    def one(task, episode_key):
        episode = collect_transitions(env, act, task, episode_key, 1, horizon)
        return context_vectors(episode, False)[:, 0], episode.valid[:, 0]

    return jax.jit(jax.vmap(one))(tasks, per_task_keys(key, tasks_count(tasks)))


def tasks_count(tasks) -> int:
    return jax.tree.leaves(tasks)[0].shape[0]


def held_out_r2(family: str, data, key) -> float:
    """Trains encoder + readout on the training tasks; R² of the readout on the test tasks."""
    (train_context, train_valid, train_y), (test_context, test_valid, test_y) = data
    hidden_sizes = tuple(int(width) for width in FLAGS.encoder_hidden_sizes)
    encoder = ENCODERS[family](FLAGS.latent_size, hidden_sizes)
    readout = _Readout(train_y.shape[-1])
    scale = train_y.std(axis=0) + 1e-8
    centre = train_y.mean(axis=0)

    def predict(params, context, valid):
        mean, _ = posterior(encoder.apply, params["encoder"], context, valid, False, family)
        return readout.apply(params["readout"], mean)

    batch_predict = jax.vmap(predict, in_axes=(None, 0, 0))
    encoder_key, readout_key, batch_key = jax.random.split(key, 3)
    params = {
        "encoder": encoder.init(encoder_key, train_context[0]),
        "readout": readout.init(readout_key, jnp.zeros((FLAGS.latent_size,))),
    }
    optimizer = optax.adam(FLAGS.lr)

    def loss(params, rows):
        predicted = batch_predict(params, train_context[rows], train_valid[rows])
        return jnp.mean((predicted - (train_y[rows] - centre) / scale) ** 2)

    @jax.jit
    def fit(params, key):
        def step(carry, step_key):
            params, opt_state = carry
            rows = jax.random.choice(
                step_key, train_context.shape[0], (FLAGS.batch_tasks,), replace=False
            )
            grads = jax.grad(loss)(params, rows)
            updates, opt_state = optimizer.update(grads, opt_state)
            return (optax.apply_updates(params, updates), opt_state), None

        keys = jax.random.split(key, FLAGS.steps)
        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), keys)
        return params

    params = fit(params, batch_key)
    predicted = jax.jit(batch_predict)(params, test_context, test_valid) * scale + centre
    residual = jnp.sum((predicted - test_y) ** 2)
    total = jnp.sum((test_y - test_y.mean(axis=0)) ** 2)
    return float(1.0 - residual / total)


class _Readout(nn.Module):
    out_size: int

    @nn.compact
    def __call__(self, z):
        for width in READOUT_SIZES:
            z = nn.relu(nn.Dense(width)(z))
        return nn.Dense(self.out_size)(z)


def main(argv) -> int:
    del argv
    check_one_of("env", FLAGS.env, [n for n in ENV_NAMES if n != "bandit"])
    for family in FLAGS.families:
        check_one_of("families", family, POSTERIOR_FAMILIES)
    int_list("encoder_hidden_sizes", FLAGS.encoder_hidden_sizes, distinct=False)
    for name in ("latent_size", "train_tasks", "test_tasks", "steps", "batch_tasks"):
        check_positive(name, getattr(FLAGS, name))
    if FLAGS.horizon < 0:
        raise UsageError(f"--horizon={FLAGS.horizon}: 0 (the environment's) or positive")
    if FLAGS.batch_tasks > FLAGS.train_tasks:
        raise UsageError(f"--batch_tasks={FLAGS.batch_tasks}: at most --train_tasks")
    env = make_env(FLAGS.env, horizon=FLAGS.horizon or None)
    horizon = env.horizon
    env = with_unit_actions(env)
    key = jax.random.PRNGKey(FLAGS.seed)
    task_key, play_key, fit_key = jax.random.split(key, 3)
    count = FLAGS.train_tasks + FLAGS.test_tasks
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(task_key, count))
    start = time.perf_counter()
    context, valid = random_play_contexts(env, tasks, play_key, horizon)
    targets = euclidean_coords(env.task_space, tasks)
    split = FLAGS.train_tasks
    data = (
        (context[:split], valid[:split], targets[:split]),
        (context[split:], valid[split:], targets[split:]),
    )
    print(
        f"{FLAGS.env}: {count} episodes of {horizon} uniform-action steps in "
        f"{time.perf_counter() - start:.1f} s; context width {context.shape[-1]}; regressing "
        f"{targets.shape[-1]} target(s)"
    )
    for family in FLAGS.families:
        start = time.perf_counter()
        r2 = held_out_r2(family, data, fit_key)
        print(
            f"{FLAGS.env} {family}: held-out R² {r2:.3f} ({FLAGS.steps} steps, "
            f"{time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    return 0


def entry_point():
    run_app(main)


if __name__ == "__main__":
    entry_point()
