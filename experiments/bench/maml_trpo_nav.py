"""maml_trpo_nav: the reference 2-D navigation configuration of MAML-TRPO (meta-batch 20, 20
episodes per task, horizon 100, one inner step, TRPO with 10 conjugate-gradient iterations).

Prints compile time, seconds per meta-iteration split into sampling / inner adaptation / TRPO step,
env steps/s, and the meta-step's achieved GFLOP/s beside this machine's large-matmul GFLOP/s; first
with the full batch in the Fisher-vector products, then with --fisher_subsample of each task's
episodes (the last line's figure).
"""

import functools
import time

import jax
import jax.numpy as jnp
from absl import flags

from experiments.bench.measure import flops_of, machine_description, matmul_gflops, sizes, timed
from metarl_jax.algos import MamlConfig, make_maml, maml, sweep_member
from metarl_jax.algos.task_axis import TaskAxis
from metarl_jax.envs import make_env
from metarl_jax.rl import conjugate_gradient, make_policy

flags.DEFINE_float(
    "fisher_subsample",
    0.25,
    "Fraction of episodes in TRPO's Fisher products for the second measurement (the first is "
    "always the full batch).",
)
FLAGS = flags.FLAGS


def run() -> None:
    print(f"machine: {machine_description()}")
    size = sizes({"repeats": 5, "meta_batch_size": 20, "rollouts_per_task": 20})
    matmul = matmul_gflops(size["repeats"])
    print(f"large matmul on this machine: {matmul:.1f} GFLOP/s")
    full = measure_maml_trpo_nav(1.0, **size)
    print(f"maml_trpo_nav_full_batch_iters_per_s: {1.0 / full:.3f}")
    print()
    subsampled = measure_maml_trpo_nav(FLAGS.fisher_subsample, **size)
    print(f"large matmul on this machine: {matmul_gflops(size['repeats']):.1f} GFLOP/s")
    print(
        f"full batch {full:.3f} s, Fisher subsample {FLAGS.fisher_subsample} "
        f"{subsampled:.3f} s per meta-iteration"
    )
    print(f"maml_trpo_nav_iters_per_s: {1.0 / subsampled:.3f}")


def measure_maml_trpo_nav(
    fisher_subsample: float, repeats: int, meta_batch_size: int, rollouts_per_task: int
) -> float:
    """Print the figures of one configuration; return seconds per meta-iteration."""
    env = make_env("navigation", horizon=100)
    config = MamlConfig(
        outer_optimizer="trpo",
        horizon=100,
        rollouts_per_task=rollouts_per_task,
        max_meta_batch_size=meta_batch_size,
        inner_steps=1,
        cg_iterations=10,
        fisher_subsample=fisher_subsample,
    )
    num_tasks = config.max_meta_batch_size
    print(
        f"config: meta-batch {num_tasks} x {config.rollouts_per_task} episodes x horizon "
        f"{config.horizon}, 1 inner step, TRPO {config.cg_iterations} CG iterations, "
        f"fisher_subsample {config.fisher_subsample}"
    )

    algorithm = make_maml(config, env)
    member = sweep_member(0, num_tasks)
    state = jax.jit(algorithm.init)(member)
    update = jax.jit(algorithm.update)
    start = time.perf_counter()
    compiled_update = update.lower(state, member).compile()
    compile_seconds = time.perf_counter() - start
    for _ in range(2):  # a couple of iterations so the policy is not at its initialization
        state, _ = compiled_update(state, member)
    iteration_seconds, (_, metrics) = timed(compiled_update, state, member, repeats=repeats)

    # The same computation in pieces, each jitted on its own, for the split and the FLOP count.
    policy = make_policy(env, config.hidden_sizes, config.activation)
    params = state.params
    axis = TaskAxis(num_tasks)
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), num_tasks))
    keys = jax.random.split(jax.random.PRNGKey(2), num_tasks)
    weights = jnp.full((num_tasks,), 1.0 / num_tasks)

    in_env = functools.partial(functools.partial, config, env, policy)
    collect = jax.jit(jax.vmap(in_env(maml.collect), in_axes=(None, 0, 0)))
    adapt = jax.jit(jax.vmap(functools.partial(maml.adapt, config, policy), in_axes=(None, 0)))
    sample_all = jax.jit(jax.vmap(in_env(maml.sample_task), in_axes=(None, 0, 0)))
    trpo_step = jax.jit(functools.partial(maml.trpo_step, config, policy, axis=axis))
    collect_seconds, (batches, _) = timed(collect, params, tasks, keys, repeats=repeats)
    adapt_seconds, _ = timed(adapt, params, batches, repeats=repeats)
    inner, post, _ = sample_all(params, tasks, keys)
    trpo_seconds, _ = timed(trpo_step, params, inner, post, weights, repeats=repeats)

    @jax.jit
    def linearize_and_gradient(params, inner, post, weights):
        return maml.trpo_problem(config, policy, params, inner, post, weights, axis).gradient

    @jax.jit
    def plus_one_fisher_product(params, inner, post, weights):
        problem = maml.trpo_problem(config, policy, params, inner, post, weights, axis)
        return problem.fisher_vector_product(problem.gradient)

    @jax.jit
    def plus_cg(params, inner, post, weights):
        problem = maml.trpo_problem(config, policy, params, inner, post, weights, axis)
        return conjugate_gradient(
            problem.fisher_vector_product, -problem.gradient, config.cg_iterations
        )[0]

    @jax.jit
    def one_step_evaluation(params, inner, post, weights):
        problem = maml.trpo_problem(config, policy, params, inner, post, weights, axis)
        return problem.evaluate_step(0.01 * problem.gradient)

    pieces = (params, inner, post, weights)
    linearize_seconds, _ = timed(linearize_and_gradient, *pieces, repeats=repeats)
    one_product_seconds, _ = timed(plus_one_fisher_product, *pieces, repeats=repeats)
    cg_seconds, _ = timed(plus_cg, *pieces, repeats=repeats)
    fisher_product_seconds = (cg_seconds - linearize_seconds) / config.cg_iterations
    tries = float(metrics["optim/line_search_tries"])

    flops_collect = flops_of(collect, params, tasks, keys)
    flops_adapt = flops_of(adapt, params, batches)
    flops_linearize = flops_of(linearize_and_gradient, *pieces)
    flops_product = flops_of(plus_one_fisher_product, *pieces) - flops_linearize
    flops_evaluation = flops_of(one_step_evaluation, *pieces) - flops_linearize
    flops_iteration = (
        2 * flops_collect
        + flops_adapt
        + flops_linearize
        + config.cg_iterations * flops_product
        + tries * flops_evaluation
    )
    env_steps = num_tasks * config.rollouts_per_task * config.horizon * 2
    sampling_seconds = 2 * collect_seconds

    print(f"compile time (one meta-iteration): {compile_seconds:.2f} s")
    print(f"seconds per meta-iteration: {iteration_seconds:.3f} (one compiled update)")
    print(f"  sampling (2 x {num_tasks} tasks of rollouts + GAE): {sampling_seconds:.3f} s")
    print(f"  inner adaptation: {adapt_seconds:.3f} s")
    print(f"  TRPO step: {trpo_seconds:.3f} s")
    print(f"    linearization + surrogate gradient: {linearize_seconds:.3f} s")
    print(
        f"    one Fisher-vector product: {fisher_product_seconds * 1e3:.1f} ms "
        f"(first alone: {(one_product_seconds - linearize_seconds) * 1e3:.1f} ms)"
    )
    print(f"    line search: {tries:.0f} evaluations")
    print(f"env steps/s: {env_steps / iteration_seconds:,.0f}")
    print(
        f"meta-step FLOPs (XLA count): {flops_iteration / 1e9:.2f} GFLOP -> "
        f"{flops_iteration / iteration_seconds / 1e9:.1f} GFLOP/s achieved; "
        f"Fisher-vector product {flops_product / 1e9:.2f} GFLOP"
    )
    return iteration_seconds
