"""MACAW (Mitchell et al., 2021): offline meta-RL by advantage-weighted regression in MAML's loop.

One meta-iteration, as Algorithm 3 of the seed paper, over a task batch drawn from the training
tasks' offline buffers:

    for each task T_i (vmapped): draw batches D_tr, D_ts from its buffer
        phi'_i   = phi   - eta   * grad_phi   L_V(phi, D_tr)                 value: MC regression
        theta'_i = theta - alpha * grad_theta [L_AWR + lambda L_ADV](theta, phi'_i, D_tr)
    phi   <- Adam( sum_i grad_phi   L_V(phi'_i, D_ts) )
    theta <- Adam( sum_i grad_theta L_AWR(theta'_i, phi'_i, D_ts) )

Every layer of the value and policy networks is a weight-transform layer: only its latent vector
adapts in the inner loop (`nets.weight_transform`); eta and alpha are learned per-parameter step
sizes, trained by the outer step through the inner one (second order). The policy has an
advantage head on (features, action), trained only in the inner loop's L_ADV. The losses are
`algos.macaw_losses`'s.

The offline data set (`SharedData`, one copy per device) holds K training and M test tasks'
buffers. Sweep axes: the task batch size masks the meta-batch (task j weighs 0 for j >= m), the
number of training tasks k restricts the task draws to the data set's first k buffers.

Evaluation: on every test task, adapt from a batch of its offline buffer (0..K steps, each on a
fresh batch), then act online: `eval/return_step{k}`, and the headline `eval/return` after
`inner_steps` steps.
"""

import functools
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from metarl_jax.algos.api import Algorithm, SharedData, SweepMember
from metarl_jax.algos.macaw_config import MacawConfig
from metarl_jax.algos.macaw_losses import (
    inner_policy_loss,
    outer_policy_loss,
    state_values,
    value_loss,
)
from metarl_jax.algos.meta_training import (
    active_tasks,
    draw_slots,
    evaluation_keys,
    per_task_keys,
    pool_size,
    reward_per_step,
)
from metarl_jax.envs import Env
from metarl_jax.nets.weight_transform import init_wt_mlp, merge, split_adapted, wt_mlp_apply
from metarl_jax.rl import awr
from metarl_jax.rl.rollout import OfflineTransitions, collect_transitions, episode_returns

FIELDS = OfflineTransitions._fields  # the data set's arrays per split, by name


class MacawData(NamedTuple):
    """The offline data set as device arrays: train [K, N, ...] and test [M, N, ...], each a dict
    of the arrays of `FIELDS` by name, and the tasks (pytrees stacked over K and M)."""

    train: dict
    test: dict
    train_tasks: object
    test_tasks: object


@flax.struct.dataclass
class MacawOptState:
    value: optax.OptState  # Adam over {value, value_lrs}
    policy: optax.OptState  # Adam over {policy, policy_lrs}


@flax.struct.dataclass
class MacawState:
    """One sweep member's training state. The fields carry the names of the dict that held it
    before, so a checkpoint saved in either layout restores into it."""

    params: dict  # {value, policy: {body, advantage_head}, value_lrs, policy_lrs}
    opt_state: MacawOptState
    key: jax.Array
    iteration: jax.Array


def macaw_optimizers(config: MacawConfig):
    """(value optimizer, policy optimizer): Adam over `value_part` and over `policy_part`."""
    return optax.adam(config.value_lr), optax.adam(config.policy_lr)


def init_params(config: MacawConfig, env: Env, key) -> dict:
    """Weight-transform value and policy networks, the policy's advantage head, and the inner
    loop's per-parameter step sizes (all `initial_inner_lr`)."""
    hidden = tuple(config.hidden_sizes)
    value_key, policy_key, head_key = jax.random.split(key, 3)
    value = init_wt_mlp(value_key, (env.obs_size, *hidden, 1), config.wt_latent_size)
    policy = {
        "body": init_wt_mlp(
            policy_key, (env.obs_size, *hidden, env.action_size), config.wt_latent_size
        ),
        "advantage_head": init_wt_mlp(
            head_key, (hidden[-1] + env.action_size, 1), config.wt_latent_size
        ),
    }
    return {
        "value": value,
        "policy": policy,
        "value_lrs": awr.init_inner_lrs(split_adapted(value)[0], config.initial_inner_lr),
        "policy_lrs": awr.init_inner_lrs(split_adapted(policy)[0], config.initial_inner_lr),
    }


def value_part(params: dict) -> dict:
    """What the value's optimizer trains: its network and its inner step sizes."""
    return {"value": params["value"], "value_lrs": params["value_lrs"]}


def policy_part(params: dict) -> dict:
    """What the policy's optimizer trains: its network, its head and their inner step sizes."""
    return {"policy": params["policy"], "policy_lrs": params["policy_lrs"]}


def draw_batch(config: MacawConfig, buffers: dict, task_index, key) -> OfflineTransitions:
    """A batch of `batch_size` transitions of one task's buffer, uniform with replacement."""
    size = jax.tree.leaves(buffers)[0].shape[1]
    rows = jax.random.randint(key, (config.batch_size,), 0, size)
    return OfflineTransitions(**{name: buffers[name][task_index, rows] for name in FIELDS})


def policy_loss_settings(config: MacawConfig, env: Env) -> dict:
    """The settings the policy losses of `algos.macaw_losses` take, by keyword."""
    return {
        "temperature": config.awr_temperature,
        "max_weight": config.max_awr_weight,
        "standardize": config.standardize_advantages,
        "discrete": env.discrete,
        "action_size": env.action_size,
        "policy_std": config.policy_std,
    }


# ----- the inner loop: one step of the latents, learned step sizes --------------------------


def adapt_value(params, batch):
    """phi' = phi - eta * grad L_V(phi, D_tr), on the value's latents only."""
    adapted, fixed = split_adapted(params["value"])

    def loss(adapted, fixed):
        return value_loss(merge(adapted, fixed), batch)

    return merge(awr.inner_sgd_step(loss, adapted, fixed, params["value_lrs"]), fixed)


def adapt_policy(config: MacawConfig, env: Env, params, policy, value, batch):
    """theta' = theta - alpha * grad [L_AWR + lambda L_ADV](theta, phi', D_tr), on the policy's
    latents only, against the adapted value phi' (held fixed)."""
    values = jax.lax.stop_gradient(state_values(value, batch.obs))
    adapted, fixed = split_adapted(policy)
    settings = policy_loss_settings(config, env)

    def loss(adapted, fixed):
        return inner_policy_loss(
            merge(adapted, fixed), batch, values, advantage_coef=config.advantage_coef, **settings
        )

    return merge(awr.inner_sgd_step(loss, adapted, fixed, params["policy_lrs"]), fixed)


# ----- the outer step -----------------------------------------------------------------------


def task_losses(config: MacawConfig, env: Env, params, task_index, key, buffers):
    """One task's outer losses (value, policy): adapt on a batch D_tr of its buffer, then
    L_V(phi', D_ts) and L_AWR(theta', phi', D_ts) on another, D_ts."""
    train_key, test_key = jax.random.split(key)
    train_batch = draw_batch(config, buffers, task_index, train_key)
    test_batch = draw_batch(config, buffers, task_index, test_key)
    value = adapt_value(params, train_batch)
    policy = adapt_policy(config, env, params, params["policy"], value, train_batch)
    test_values = jax.lax.stop_gradient(state_values(value, test_batch.obs))
    return (
        value_loss(value, test_batch),
        outer_policy_loss(policy, test_batch, test_values, **policy_loss_settings(config, env)),
    )


def meta_step(
    config: MacawConfig,
    env: Env,
    value_optimizer,
    policy_optimizer,
    params,
    opt_state: MacawOptState,
    buffers,
    task_indices,
    task_weights,
    key,
):
    """One Adam step of each of value and policy on the weighted sum of the tasks' outer losses
    (through the inner step: second order). Returns (params, opt_state, metrics)."""

    def meta_loss(params):
        value_losses, policy_losses = jax.vmap(
            functools.partial(task_losses, config, env), in_axes=(None, 0, 0, None)
        )(params, task_indices, per_task_keys(key, task_indices.shape[0]), buffers)
        value_loss, policy_loss = (
            jnp.sum(task_weights * value_losses),
            jnp.sum(task_weights * policy_losses),
        )
        return value_loss + policy_loss, (value_loss, policy_loss)

    grads, (value_loss, policy_loss) = jax.grad(meta_loss, has_aux=True)(params)
    value_updates, value_state = value_optimizer.update(
        value_part(grads), opt_state.value, value_part(params)
    )
    policy_updates, policy_state = policy_optimizer.update(
        policy_part(grads), opt_state.policy, policy_part(params)
    )
    params = {
        **optax.apply_updates(value_part(params), value_updates),
        **optax.apply_updates(policy_part(params), policy_updates),
    }
    metrics = {
        "optim/value_loss": value_loss,
        "optim/policy_loss": policy_loss,
        "optim/inner_lr_value": _mean_of_leaves(params["value_lrs"]),
        "optim/inner_lr_policy": _mean_of_leaves(params["policy_lrs"]),
    }
    return params, MacawOptState(value=value_state, policy=policy_state), metrics


def _mean_of_leaves(tree):
    return jnp.mean(jnp.concatenate([x.ravel() for x in jax.tree.leaves(tree)]))


# ----- evaluation: offline adaptation, online returns ---------------------------------------


def policy_actions(config: MacawConfig, env: Env, policy, deterministic: bool):
    """choose(key, obs) -> actions of the policy in the env's units (bandits: sampled arms)."""

    def choose(key, obs):
        outputs = wt_mlp_apply(policy["body"], obs)
        if env.discrete:
            return jax.random.categorical(key, outputs)
        mean = jnp.tanh(outputs)
        if not deterministic:
            mean = mean + config.policy_std * jax.random.normal(key, mean.shape)
        return jnp.clip(mean, -1.0, 1.0) * env.action_bound

    return choose


def adapt_step(config: MacawConfig, env: Env, params, buffers, task_index, key):
    """One offline adaptation step on a batch of a task's buffer: params with the adapted value
    and policy (their step sizes unchanged)."""
    batch = draw_batch(config, buffers, task_index, key)
    value = adapt_value(params, batch)
    policy = adapt_policy(config, env, params, params["policy"], value, batch)
    return {**params, "value": value, "policy": policy}


def evaluation_keys_of_task(config: MacawConfig, key, num_steps: int):
    """(adaptation keys [K], keys of the online episodes after 0..K steps [K + 1])."""
    adapt_keys = jax.random.split(jax.random.fold_in(key, 0), num_steps)
    run_keys = jax.random.split(jax.random.fold_in(key, 1), num_steps + 1)
    return adapt_keys, run_keys


def adapted_policies(config: MacawConfig, env: Env, params, buffers, task_index, adapt_keys):
    """The policy after 0..K offline steps on one task, stacked [K + 1, ...]."""

    def adapt(step_params, adapt_key):
        step_params = adapt_step(config, env, step_params, buffers, task_index, adapt_key)
        return step_params, step_params["policy"]

    _, policies = jax.lax.scan(adapt, params, adapt_keys)
    return jax.tree.map(
        lambda first, rest: jnp.concatenate([first[None], rest]), params["policy"], policies
    )


def online_episodes(config: MacawConfig, env: Env, policy, task, key, num_episodes: int):
    """Episodes of the (adapted) policy acting deterministically on a task."""
    choose = policy_actions(config, env, policy, True)
    return collect_transitions(env, choose, task, key, num_episodes, config.horizon)


def evaluate_task(config: MacawConfig, env: Env, params, buffers, task_index, task, key):
    """Online returns after 0..K offline adaptation steps on one test task."""
    adapt_keys, run_keys = evaluation_keys_of_task(config, key, config.eval_adapt_steps)
    policies = adapted_policies(config, env, params, buffers, task_index, adapt_keys)

    def returns_of(policy, run_key):
        episodes = online_episodes(config, env, policy, task, run_key, config.eval_episodes)
        return jnp.mean(episode_returns(episodes))

    return jax.vmap(returns_of)(policies, run_keys)


# ----- the algorithm ------------------------------------------------------------------------


def make_macaw(config: MacawConfig, env: Env, data: MacawData) -> Algorithm:
    value_optimizer, policy_optimizer = macaw_optimizers(config)
    num_train = jax.tree.leaves(data.train)[0].shape[0]
    num_test = jax.tree.leaves(data.test)[0].shape[0]

    def init(member: SweepMember, shared: MacawData) -> MacawState:
        del shared
        return init_state(config, env, value_optimizer, policy_optimizer, member)

    def update(state: MacawState, member: SweepMember, shared: MacawData):
        return meta_iteration(
            config, env, value_optimizer, policy_optimizer, num_train, state, member, shared
        )

    def evaluate(state: MacawState, member: SweepMember, shared: MacawData):
        del member
        return evaluation_metrics(config, env, num_test, state, shared)

    def env_steps_per_iteration(member: SweepMember):
        del member
        return jnp.zeros((), jnp.float32)

    return Algorithm(
        init=init,
        update=update,
        evaluate=evaluate,
        env_steps_per_iteration=env_steps_per_iteration,
        loss_metrics=("optim/value_loss", "optim/policy_loss"),
        shared_data=SharedData(data),
        evaluation_tasks=lambda: {"eval": data.test_tasks},
        evaluation_steps=config.eval_episodes * config.horizon,
    )


def init_state(
    config: MacawConfig, env: Env, value_optimizer, policy_optimizer, member: SweepMember
) -> MacawState:
    key, init_key = jax.random.split(jax.random.PRNGKey(member.seed))
    params = init_params(config, env, init_key)
    return MacawState(
        params=params,
        opt_state=MacawOptState(
            value=value_optimizer.init(value_part(params)),
            policy=policy_optimizer.init(policy_part(params)),
        ),
        key=key,
        iteration=jnp.asarray(0, jnp.int32),
    )


def meta_iteration(
    config: MacawConfig,
    env: Env,
    value_optimizer,
    policy_optimizer,
    num_train: int,
    state: MacawState,
    member,
    shared,
):
    """A task batch drawn among the member's first k training buffers, then one meta-step; task
    j weighs 1/m for j < m (the member's task batch size), else 0."""
    key, task_key, batch_key = jax.random.split(state.key, 3)
    num_tasks = config.max_meta_batch_size
    indices = draw_slots(task_key, num_tasks, pool_size(member, num_train))
    weights = active_tasks(member, num_tasks) / member.meta_batch_size
    params, opt_state, metrics = meta_step(
        config,
        env,
        value_optimizer,
        policy_optimizer,
        state.params,
        state.opt_state,
        shared.train,
        indices,
        weights,
        batch_key,
    )
    return MacawState(params, opt_state, key, state.iteration + 1), metrics


def evaluation_metrics(config: MacawConfig, env: Env, num_test: int, state, shared):
    """Mean online return over every test task after k = 0..K offline steps; the headline after
    `inner_steps`."""
    _, data_key = evaluation_keys(config.eval_seed)
    evaluate = functools.partial(evaluate_task, config, env)
    returns = jax.vmap(evaluate, in_axes=(None, None, 0, 0, 0))(
        state.params,
        shared.test,
        jnp.arange(num_test),
        shared.test_tasks,
        per_task_keys(data_key, num_test),
    ).mean(axis=0)
    metrics = {f"eval/return_step{k}": returns[k] for k in range(config.eval_adapt_steps + 1)}
    headline = returns[min(config.inner_steps, config.eval_adapt_steps)]
    metrics["eval/return"] = headline
    # adaptation is offline (no env steps): the online episodes after it are the whole trial
    metrics["eval/reward_per_step"] = reward_per_step(headline, config.horizon)
    return metrics
