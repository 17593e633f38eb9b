"""What the run app derives for an algorithm beyond its settings' flags, before its config is
built: `ALGORITHM_INPUTS[config class](derived, env, swept k's)` adds derived config values to
`derived` and returns the algorithm's data (MACAW's offline data set), or None. An algorithm whose
config needs nothing beyond its flags and the shared derived values has no entry here.
"""

from absl import flags

from experiments.app_plumbing import UsageError
from metarl_jax.algos import MacawConfig, PearlConfig
from metarl_jax.algos.macaw import MacawData
from metarl_jax.envs import Env
from metarl_jax.io.offline import OfflineDataError, load_macaw_data
from metarl_jax.tasks import MAX_FINITE_TASKS

FLAGS = flags.FLAGS


def pearl_inputs(derived: dict, env: Env, num_train_tasks) -> None:
    """PEARL keeps replay buffers per training task, so its training tasks are always a finite
    pool: its slots are the sweep's largest k, and for 'all' (a whole region) --task_pool_size
    tasks of it."""
    sizes = [k for k in num_train_tasks if k > 0]
    if 0 in num_train_tasks:
        whole = FLAGS.task_pool_size
        if env.task_space.num_distinct:
            whole = min(whole, env.task_space.num_distinct)
        if whole > MAX_FINITE_TASKS:
            raise UsageError(f"--task_pool_size: at most {MAX_FINITE_TASKS} tasks")
        if sizes and max(sizes) > whole:
            raise UsageError(
                f"--task_pool_size: PEARL's 'all' is a pool of {whole} tasks, fewer than the "
                f"sweep's k={max(sizes)}; raise it above every k"
            )
        sizes.append(whole)
    derived["num_task_slots"] = max(sizes)


def macaw_inputs(derived: dict, env: Env, num_train_tasks) -> MacawData:
    """MACAW trains on the offline data set's training tasks and evaluates on its test tasks."""
    if not FLAGS.offline_data:
        raise UsageError("--offline_data: MACAW needs an offline data set (make_offline_data)")
    if FLAGS.train_tasks != "full" or FLAGS.eval_tasks != "full":
        flag = "train_tasks" if FLAGS.train_tasks != "full" else "eval_tasks"
        raise UsageError(
            f"--{flag}: MACAW's training and test tasks are those of --offline_data; restrict "
            "them when making the data"
        )
    try:
        data, metadata = load_macaw_data(FLAGS.offline_data, env)
    except OfflineDataError as error:
        raise UsageError(f"--offline_data: {error}") from None
    if env.horizon != metadata["horizon"]:
        raise UsageError(
            f"--horizon: {env.horizon}, but the episodes of {FLAGS.offline_data} last "
            f"{metadata['horizon']} steps (its Monte-Carlo returns are per episode)"
        )
    if abs(FLAGS.gamma - metadata["gamma"]) > 1e-9:
        raise UsageError(
            f"--gamma: {FLAGS.gamma}, but the Monte-Carlo returns of {FLAGS.offline_data} are "
            f"discounted with {metadata['gamma']}"
        )
    available = metadata["num_train_tasks"]
    if max(num_train_tasks) > available:
        raise UsageError(
            f"--num_train_tasks: {max(num_train_tasks)} exceeds the {available} training tasks "
            f"of {FLAGS.offline_data}"
        )
    return data


ALGORITHM_INPUTS = {PearlConfig: pearl_inputs, MacawConfig: macaw_inputs}
