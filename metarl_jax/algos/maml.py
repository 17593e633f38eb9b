"""MAML for reinforcement learning (Finn et al., 2017), with a TRPO or a PPO (ProMP) outer step.

One meta-iteration, as Algorithm 1 of the seed paper:

    sample a meta-batch of tasks T_i
    for each task (vmapped):
        for k in 0..K-1:
            collect D_i^k with theta_i^k;  theta_i^{k+1} = theta_i^k - alpha grad L(D_i^k)
        collect D'_i with the adapted theta_i^K
    outer step on  sum_i L_outer(theta_i^K(theta), D'_i)   (TRPO or ProMP's clipped objective)

With `outer_objective=every_step` the outer loss pools L_outer(theta_i^k(theta), D_i^k) over
k = 1..K (D_i^K = D'_i): every adapted policy up to the K-th is trained, not only the last.

The data is constant; the adapted parameters are recomputed as a function of theta so that the
outer gradient flows through the inner gradient steps (second order; `first_order` stops it).
A meta-batch lies on a `TaskAxis`: one member's masked slots, or a pack of members' real tasks.

TRPO's Fisher-vector products use the Gauss-Newton form of the KL's Hessian: the adapted policy's
distribution parameters f(theta) on D' are linearized once (`jax.linearize`), and each product is
J^T H_f J v with H_f the KL's Hessian in distribution space (exact at the current policy, where
the KL's gradient vanishes). The surrogate's gradient reuses the same linearization.
"""

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from metarl_jax.algos import config_checks as checks
from metarl_jax.algos import settings
from metarl_jax.algos.api import Algorithm, PackLayout, SweepMember
from metarl_jax.algos.meta_training import (
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
from metarl_jax.nets import ACTIVATIONS
from metarl_jax.rl import (
    INNER_LOSSES,
    Batch,
    Policy,
    backtracking_line_search,
    clipped_surrogate_loss,
    conjugate_gradient,
    episode_returns,
    make_batch,
    make_policy,
    masked_mean,
    max_step,
    rollout,
    rowwise_dot,
)
from metarl_jax.tasks import Restriction

OUTER_OPTIMIZERS = ("trpo", "ppo")
OUTER_OBJECTIVES = ("final", "every_step")
MAX_INNER_STEPS = 5
MAX_EVAL_ADAPT_STEPS = 20


class TrpoProblem(NamedTuple):
    flat: jax.Array  # theta as one vector
    unravel: Callable
    loss_before: jax.Array
    gradient: jax.Array
    fisher_vector_product: Callable[[jax.Array], jax.Array]
    evaluate_step: Callable[[jax.Array], tuple[jax.Array, jax.Array]]  # step -> (loss, kl)


@dataclasses.dataclass(frozen=True)
class MamlConfig:
    outer_optimizer: str = "trpo"  # set by the algorithm's name: maml_trpo | maml_ppo
    hidden_sizes: tuple[int, ...] = settings.hidden_sizes((64, 64))
    activation: str = setting("tanh", f"Policy activation: one of {tuple(ACTIVATIONS)}.")
    horizon: int = 100
    rollouts_per_task: int = setting(20, "Episodes per task per adaptation step.")
    max_meta_batch_size: int = 20
    # inner loop
    inner_steps: int = settings.inner_steps()
    inner_lr: float = settings.inner_lr(0.1)
    inner_loss: str = setting(
        "lvc",
        "Inner objective: lvc (ProMP's likelihood ratio) | reinforce (log-prob; "
        "pytorch-maml-rl's MAML-TRPO, whose fixed-data curvature makes TRPO's post-update "
        "return decline).",
    )
    first_order: bool = setting(False, "First-order MAML (no gradient through the inner step).")
    outer_objective: str = setting(
        "final",
        "Which adapted policies the outer step optimises: final (theta^K on D^K: MAML) | "
        "every_step (theta^k on D^k for every k = 1..K, pooled: MAML++'s multi-step loss), so "
        "that each test-time step up to inner_steps is trained, not only the last.",
    )
    gamma: float = settings.gamma()
    gae_lambda: float = settings.gae_lambda()
    # TRPO outer step
    max_kl: float = setting(0.01, "TRPO: KL bound.", sweepable=True)
    cg_iterations: int = setting(10, "TRPO: conjugate-gradient iterations.")
    cg_damping: float = setting(
        1e-5, "TRPO: damping added to the Fisher-vector product.", sweepable=True
    )
    line_search_steps: int = setting(15, "TRPO: backtracking steps.")
    line_search_ratio: float = setting(0.8, "TRPO: backtracking ratio.", sweepable=True)
    fisher_subsample: float = setting(
        1.0, "TRPO: fraction of each task's episodes used in Fisher-vector products."
    )
    # PPO (ProMP) outer step
    outer_lr: float = settings.outer_lr()
    ppo_steps: int = setting(5, "MAML-PPO: gradient steps per meta-iteration.")
    clip: float = settings.clip(0.3)
    inner_kl_coef: float = setting(
        5e-4, "MAML-PPO: ProMP's KL penalty on the pre-update policy.", sweepable=True
    )
    # tasks and meta-test evaluation
    train_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    eval_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    task_pool_seed: int = settings.task_pool_seed()
    num_eval_tasks: int = settings.num_eval_tasks()
    eval_adapt_steps: int = settings.eval_adapt_steps(3)
    extra_step_lr_scale: float = setting(
        0.25,
        "Test-time inner steps beyond inner_steps (those meta-training never takes) use "
        "inner_lr times this. At 1 a second step overshoots what the first reached; the MAML "
        "paper's evaluation takes 0.5, which still overshoots after long training (BUILD_NOTES).",
    )
    eval_train_region: bool = settings.eval_train_region()
    eval_seed: int = settings.eval_seed()

    def __post_init__(self):
        checks.one_of(self, "outer_optimizer", OUTER_OPTIMIZERS)
        checks.one_of(self, "activation", ACTIVATIONS)
        checks.one_of(self, "inner_loss", INNER_LOSSES)
        checks.one_of(self, "outer_objective", OUTER_OBJECTIVES)
        checks.layer_sizes(self, "hidden_sizes")
        checks.positive(
            self,
            "horizon",
            "rollouts_per_task",
            "max_meta_batch_size",
            "inner_lr",
            "max_kl",
            "cg_iterations",
            "line_search_steps",
            "outer_lr",
            "ppo_steps",
            "extra_step_lr_scale",
            "clip",
            "num_eval_tasks",
        )
        checks.non_negative(self, "cg_damping", "inner_kl_coef")
        checks.in_range(self, "inner_steps", 1, MAX_INNER_STEPS)
        checks.in_range(self, "eval_adapt_steps", 0, MAX_EVAL_ADAPT_STEPS)
        checks.in_unit_interval(self, "gamma", "gae_lambda")
        if not 0.0 < self.line_search_ratio < 1.0:
            checks.fail("line_search_ratio", self.line_search_ratio, "in (0, 1)")
        if not 0.0 < self.fisher_subsample <= 1.0:
            checks.fail("fisher_subsample", self.fisher_subsample, "in (0, 1]")


# ----- the inner loop -------------------------------------------------------------------------


def collect(config: MamlConfig, env: Env, policy: Policy, params, task, key):
    """`rollouts_per_task` episodes with theta: (batch with advantages, mean return)."""
    trajectory = rollout(env, policy, params, task, key, config.rollouts_per_task, config.horizon)
    batch = make_batch(trajectory, config.gamma, config.gae_lambda)
    return batch, jnp.mean(episode_returns(trajectory))


def adapt(config: MamlConfig, policy: Policy, params, batch: Batch, lr=None):
    """One inner policy-gradient step: theta - alpha grad L_inner(theta, D) (alpha = inner_lr
    unless given)."""
    inner_loss = INNER_LOSSES[config.inner_loss]
    grads = jax.grad(lambda p: inner_loss(policy, p, batch))(params)
    if config.first_order:
        grads = jax.lax.stop_gradient(grads)
    lr = config.inner_lr if lr is None else lr
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def adapt_through(config: MamlConfig, policy: Policy, params, inner_batches: Batch):
    """theta^1..theta^K(theta), stacked: the inner steps replayed on fixed data, differentiable
    in theta."""
    step = functools.partial(adapt, config, policy)
    return jax.lax.scan(lambda p, b: (step(p, b),) * 2, params, inner_batches)[1]


def inner_step_lr(config: MamlConfig, k):
    """The step size of inner step k (from 0): inner_lr for the steps meta-training takes,
    inner_lr * extra_step_lr_scale beyond them."""
    return jnp.where(
        k < config.inner_steps, config.inner_lr, config.inner_lr * config.extra_step_lr_scale
    )


def adaptation_steps(config: MamlConfig, env: Env, policy: Policy, params, task, key, num_steps):
    """Collect a batch with theta^k and adapt, for k = 0..num_steps (no step after the last);
    steps beyond `inner_steps` at inner_lr * extra_step_lr_scale.

    One scan holds the only copy of the rollout, which keeps compilation short for MJX.
    """
    step_on = functools.partial(adapt, config, policy)

    def step(p, k):
        batch, mean_return = collect(config, env, policy, p, task, jax.random.fold_in(key, k))
        # the steps meta-training takes keep inner_lr as a constant (bit-identical training);
        # only an evaluation past them traces a per-step step size
        if num_steps > config.inner_steps and config.extra_step_lr_scale != 1.0:
            p = jax.lax.cond(
                k < num_steps, step_on, lambda p, *_: p, p, batch, inner_step_lr(config, k)
            )
        else:
            p = jax.lax.cond(k < num_steps, step_on, lambda p, _: p, p, batch)
        return p, (batch, mean_return)

    return jax.lax.scan(step, params, jnp.arange(num_steps + 1))[1]


def sample_task(config: MamlConfig, env: Env, policy: Policy, params, task, key):
    """Collect the inner batches and the post-adaptation batch of one task."""
    batches, step_returns = adaptation_steps(
        config, env, policy, params, task, key, config.inner_steps
    )
    inner_batches = jax.tree.map(lambda x: x[:-1], batches)
    post_batch = jax.tree.map(lambda x: x[-1], batches)
    if config.outer_objective == "every_step":  # D^1..D^K, each for the policy it came from
        post_batch = jax.tree.map(lambda x: x[1:], batches)
    return inner_batches, post_batch, step_returns


# ----- per-task objectives on the post-adaptation data, as functions of the outputs --------


def post_dist_params(config: MamlConfig, policy: Policy, params, inner, post: Batch):
    """The adapted policy's distribution parameters on D' (through the inner steps): theta^K on
    D^K, or with `every_step` theta^k on D^k for k = 1..K ([K, ...])."""
    adapted = adapt_through(config, policy, params, inner)
    if config.outer_objective == "every_step":
        return jax.vmap(policy.apply)(adapted, post.obs)
    return policy.apply(jax.tree.map(lambda x: x[-1], adapted), post.obs)


def surrogate_loss(policy: Policy, dists, post: Batch, weights, axis: TaskAxis):
    """-sum_i w_i E[pi_theta'(a|s) / pi_sample(a|s) A] over the meta-batch (per member)."""
    log_ratio = policy.dist.log_prob(dists, post.actions) - post.log_probs
    per_task = jax.vmap(masked_mean)(jnp.exp(log_ratio) * post.advantages, post.valid)
    return -axis.member_sums(weights * per_task)


def mean_kl(policy: Policy, old_dists, dists, valid, weights, axis: TaskAxis):
    per_task = jax.vmap(masked_mean)(policy.dist.kl(old_dists, dists), valid)
    return axis.member_sums(weights * per_task)


# ----- the outer steps --------------------------------------------------------------------


def trpo_problem(
    config: MamlConfig, policy: Policy, params, inner_batches, post: Batch, weights, axis: TaskAxis
) -> TrpoProblem:
    """The outer objective linearized at theta: loss, gradient, Fisher products, step test.

    On a packed axis, params are the members' stacked [G, ...] and theta is rows [G, D]; the
    objective is the sum of the members' (block-separable), so its gradient and Fisher products
    are the members' own, row by row, and losses and KLs come per member."""
    flat = axis.over_members(lambda p: ravel_pytree(p)[0])(params)
    unravel = ravel_pytree(axis.first_member(params))[1]
    num_episodes = config.rollouts_per_task
    fisher_episodes = max(1, math.ceil(config.fisher_subsample * num_episodes))
    dists_of = functools.partial(post_dist_params, config, policy)

    def outputs(flat_params, inner, post_b):
        return jax.vmap(
            lambda f, i, b: dists_of(unravel(f), i, b), in_axes=(axis.member_axis, 0, 0)
        )(axis.slot_values(flat_params), inner, post_b)

    if fisher_episodes < num_episodes:
        dists, outputs_vjp = jax.vjp(lambda f: outputs(f, inner_batches, post), flat)
        fisher_inner = _episode_prefix(inner_batches, fisher_episodes, episode_axis=3)
        fisher_post = _episode_prefix(post, fisher_episodes, episode_axis=post.valid.ndim - 1)
        fisher_dists, fisher_jvp = jax.linearize(
            lambda f: outputs(f, fisher_inner, fisher_post), flat
        )
        fisher_vjp = jax.linear_transpose(fisher_jvp, flat)
        fisher_valid = fisher_post.valid
    else:
        dists, outputs_jvp = jax.linearize(lambda f: outputs(f, inner_batches, post), flat)
        outputs_vjp = jax.linear_transpose(outputs_jvp, flat)
        fisher_dists, fisher_jvp, fisher_vjp = dists, outputs_jvp, outputs_vjp
        fisher_valid = post.valid

    def total_loss(d):
        losses = surrogate_loss(policy, d, post, weights, axis)
        return jnp.sum(losses), losses

    (_, loss_before), loss_cotangent = jax.value_and_grad(total_loss, has_aux=True)(dists)
    gradient = outputs_vjp(loss_cotangent)[0]
    kl_gradient = jax.grad(
        lambda d: jnp.sum(mean_kl(policy, fisher_dists, d, fisher_valid, weights, axis))
    )

    def fisher_vector_product(v):
        tangent = fisher_jvp(v)
        curvature = jax.jvp(kl_gradient, (fisher_dists,), (tangent,))[1]
        return fisher_vjp(curvature)[0] + config.cg_damping * v

    def evaluate_step(step):
        new_dists = outputs(flat + step, inner_batches, post)
        return surrogate_loss(policy, new_dists, post, weights, axis), mean_kl(
            policy, dists, new_dists, post.valid, weights, axis
        )

    return TrpoProblem(
        flat,
        axis.over_members(unravel),
        loss_before,
        gradient,
        fisher_vector_product,
        evaluate_step,
    )


def trpo_step(
    config: MamlConfig, policy: Policy, params, inner_batches, post, weights, axis: TaskAxis
):
    """Natural-gradient direction by CG, scaled to the KL bound, then a backtracking search
    (on a packed axis each member its own solve, step and search; metrics per member)."""
    problem = trpo_problem(config, policy, params, inner_batches, post, weights, axis)
    direction, residual = conjugate_gradient(
        problem.fisher_vector_product, -problem.gradient, config.cg_iterations
    )
    curvature = rowwise_dot(direction, -problem.gradient - residual)  # = direction^T F direction
    full_step = max_step(direction, curvature, config.max_kl)
    fraction, loss_after, kl, tried = backtracking_line_search(
        lambda fraction: problem.evaluate_step(fraction[..., None] * full_step),
        problem.loss_before,
        config.max_kl,
        config.line_search_steps,
        config.line_search_ratio,
    )
    metrics = {
        "loss_before": problem.loss_before,
        "loss_after": loss_after,
        "kl": kl,
        "line_search_tries": tried.astype(jnp.float32),
        "step_accepted": (fraction > 0).astype(jnp.float32),
    }
    # a rejected step is no step, even one that is not finite (0 * nan would be nan)
    step = jnp.where((fraction > 0)[..., None], fraction[..., None] * full_step, 0.0)
    return problem.unravel(problem.flat + step), metrics


def ppo_step(
    config: MamlConfig,
    policy: Policy,
    optimizer,
    params,
    opt_state,
    inner_batches,
    post: Batch,
    weights,
    axis: TaskAxis,
):
    """ProMP's outer step: `ppo_steps` Adam steps on the clipped surrogate of the adapted policy
    plus a KL penalty on the pre-update policy, recomputing the adaptation each step (on a
    packed axis: the members' stacked parameters and Adam states; metrics per member)."""
    first_inner = jax.tree.map(lambda x: x[:, 0], inner_batches)
    on_slots = functools.partial(jax.vmap, in_axes=(axis.member_axis, 0))
    pre_dists_before = on_slots(policy.apply)(axis.slot_values(params), first_inner.obs)
    dists_of = functools.partial(post_dist_params, config, policy)

    def promp_loss(p):
        slot_params = axis.slot_values(p)
        dists = jax.vmap(dists_of, in_axes=(axis.member_axis, 0, 0))(
            slot_params, inner_batches, post
        )
        log_ratio = policy.dist.log_prob(dists, post.actions) - post.log_probs
        clip_loss = jax.vmap(clipped_surrogate_loss, in_axes=(0, 0, 0, None))(
            log_ratio, post.advantages, post.valid, config.clip
        )
        pre_dists = on_slots(policy.apply)(slot_params, first_inner.obs)
        pre_kl = jax.vmap(masked_mean)(
            policy.dist.kl(pre_dists_before, pre_dists), first_inner.valid
        )
        losses = axis.member_sums(weights * (clip_loss + config.inner_kl_coef * pre_kl))
        return jnp.sum(losses), (losses, axis.member_sums(weights * pre_kl))

    update = axis.over_members(optimizer.update)

    def one_step(carry, _):
        p, s = carry
        (_, (loss, pre_kl)), grads = jax.value_and_grad(promp_loss, has_aux=True)(p)
        updates, s = update(grads, s, p)
        return (optax.apply_updates(p, updates), s), (loss, pre_kl)

    (params, opt_state), (losses, pre_kls) = jax.lax.scan(
        one_step, (params, opt_state), None, length=config.ppo_steps
    )
    metrics = {"loss_before": losses[0], "loss_after": losses[-1], "kl": pre_kls[-1]}
    return params, opt_state, metrics


def inner_diagnostics(
    config: MamlConfig,
    env: Env,
    policy: Policy,
    params,
    new_params,
    inner_batches,
    weights,
    axis: TaskAxis,
):
    """What the inner step does and how far the outer step moved the pre-update policy:
    the first inner gradient's norm, the whole inner displacement |theta^K - theta|, the
    KL(pi_theta || pi_theta_new) on the first inner batch, the mean log-std there."""

    def per_task(inner, params, new_params):
        first = jax.tree.map(lambda x: x[0], inner)
        first_step = jax.tree.map(jnp.subtract, adapt(config, policy, params, first), params)
        if config.inner_steps == 1:
            displacement = first_step
        else:
            adapted = jax.tree.map(lambda x: x[-1], adapt_through(config, policy, params, inner))
            displacement = jax.tree.map(jnp.subtract, adapted, params)
        dists = policy.apply(params, first.obs)
        kl = masked_mean(policy.dist.kl(dists, policy.apply(new_params, first.obs)), first.valid)
        log_std = masked_mean(dists[1].mean(axis=-1), first.valid) if not env.discrete else 0.0
        grad_norm = optax.tree.norm(first_step) / config.inner_lr
        return grad_norm, optax.tree.norm(displacement), kl, log_std

    values = jax.vmap(per_task, in_axes=(0, axis.member_axis, axis.member_axis))(
        inner_batches, *axis.slot_values((params, new_params))
    )
    names = ("inner_grad_norm", "inner_step_norm", "pre_kl", "log_std")
    metrics = {name: axis.member_sums(weights * v) for name, v in zip(names, values, strict=True)}
    if env.discrete:
        del metrics["log_std"]
    return metrics


# ----- one meta-iteration, the meta-test, the algorithm ------------------------------------


def meta_iteration(
    config: MamlConfig,
    env: Env,
    policy: Policy,
    optimizer,
    samplers: TaskSamplers,
    state,
    member: SweepMember,
    axis: TaskAxis,
):
    """Sample the meta-batch, adapt to each task, take the outer step: the next state and the
    iteration's metrics (per member on a packed axis, where state and member are stacked)."""
    key, task_key, data_key = axis.split_keys(state.key, 3)
    tasks, slot_keys = axis.task_inputs(samplers.train, member, task_key, data_key)
    inner_batches, post, step_returns = jax.vmap(
        functools.partial(sample_task, config, env, policy), in_axes=(axis.member_axis, 0, 0)
    )(axis.slot_values(state.params), tasks, slot_keys)
    weights = axis.weights(member)
    if config.outer_optimizer == "trpo":
        params, metrics = trpo_step(
            config, policy, state.params, inner_batches, post, weights, axis
        )
        opt_state = state.opt_state
    else:
        params, opt_state, metrics = ppo_step(
            config,
            policy,
            optimizer,
            state.params,
            state.opt_state,
            inner_batches,
            post,
            weights,
            axis,
        )
    metrics |= inner_diagnostics(
        config, env, policy, state.params, params, inner_batches, weights, axis
    )
    mean_returns = axis.member_sums(weights[:, None] * step_returns)
    metrics = {f"optim/{name}": value for name, value in metrics.items()}
    metrics["train/return"] = mean_returns[..., -1]
    for k in range(config.inner_steps + 1):
        metrics[f"train/return_step{k}"] = mean_returns[..., k]
    return axis.over_members(next_state)(state, params, opt_state, key), metrics


def meta_test(config: MamlConfig, env: Env, policy: Policy, samplers: TaskSamplers, params):
    """Mean return on the evaluation tasks after 0, 1, ..., eval_adapt_steps inner steps.

    eval/return is the return after as many steps as meta-training takes (`inner_steps`).
    """
    task_key, data_key = evaluation_keys(config.eval_seed)
    task_keys = per_task_keys(data_key, config.num_eval_tasks)

    def adaptation_curve(task, task_data_key):
        return adaptation_steps(
            config, env, policy, params, task, task_data_key, config.eval_adapt_steps
        )[1]

    metrics = {}
    for prefix, sample_tasks in evaluation_sets(samplers, config.eval_train_region).items():
        tasks = sample_tasks(task_key, config.num_eval_tasks)
        per_task = jax.vmap(adaptation_curve)(tasks, task_keys)
        curve = per_task.mean(axis=0)
        for k in range(config.eval_adapt_steps + 1):
            metrics[f"{prefix}/return_step{k}"] = curve[k]
        headline = min(config.inner_steps, config.eval_adapt_steps)
        metrics[f"{prefix}/return"] = curve[headline]
        metrics |= task_group_metrics(env.task_space, prefix, tasks, per_task[:, headline])
        metrics[f"{prefix}/reward_per_step"] = reward_per_step(
            curve[: headline + 1], config.horizon
        )
    return metrics


def make_maml(config: MamlConfig, env: Env) -> Algorithm:
    policy = make_policy(env, config.hidden_sizes, config.activation)
    optimizer = optax.adam(config.outer_lr)
    samplers = task_samplers(
        env.task_space, config.train_tasks, config.eval_tasks, config.task_pool_seed
    )
    iteration = functools.partial(meta_iteration, config, env, policy, optimizer, samplers)
    num_tasks = config.max_meta_batch_size
    steps_per_task = config.rollouts_per_task * config.horizon

    def update(state, member: SweepMember):
        return iteration(state, member, TaskAxis(num_tasks))

    def packed_update(states, members: SweepMember, pack: PackLayout):
        return iteration(states, members, TaskAxis(num_tasks, pack))

    return Algorithm(
        init=lambda member: initial_state(member, policy.init, optimizer),
        update=update,
        evaluate=lambda state, member: meta_test(config, env, policy, samplers, state.params),
        env_steps_per_iteration=lambda member: (
            member.meta_batch_size.astype(jnp.float32) * (steps_per_task * (config.inner_steps + 1))
        ),
        loss_metrics=("optim/loss_before", "optim/loss_after", "optim/kl", "train/return"),
        packed_update=packed_update,
        evaluation_tasks=evaluation_task_sets(
            samplers, config.eval_train_region, config.num_eval_tasks, config.eval_seed
        ),
        evaluation_steps=steps_per_task * (min(config.inner_steps, config.eval_adapt_steps) + 1),
    )


def _episode_prefix(batch: Batch, n: int, episode_axis: int) -> Batch:
    """The first n episodes of every field of a (meta-)batch; episodes sit at `episode_axis`."""
    return jax.tree.map(lambda x: jax.lax.slice_in_dim(x, 0, n, axis=episode_axis), batch)
