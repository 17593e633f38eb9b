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
advantage head on (features, action), trained only in the inner loop's L_ADV.

The offline data set (`SharedData`, one copy per device) holds K training and M test tasks'
buffers. Sweep axes: the task batch size masks the meta-batch (task j weighs 0 for j >= m), the
number of training tasks k restricts the task draws to the data set's first k buffers.

Evaluation: on every test task, adapt from a batch of its offline buffer (0..K steps, each on a
fresh batch), then act online: `eval/return_step{k}`, and the headline `eval/return` after
`inner_steps` steps.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl_jax.algos import config_checks as checks
from metarl_jax.algos.api import Algorithm, SharedData, SweepMember
from metarl_jax.algos.meta_training import (
    active_tasks,
    draw_slots,
    evaluation_keys,
    per_task_keys,
    pool_size,
)
from metarl_jax.envs import Env
from metarl_jax.nets.weight_transform import (
    init_wt_mlp,
    merge,
    split_adapted,
    wt_mlp_apply,
)
from metarl_jax.rl import awr
from metarl_jax.rl.rollout import collect_transitions, episode_returns

FIELDS = ("obs", "actions", "rewards", "returns")


@dataclasses.dataclass(frozen=True)
class MacawConfig:
    hidden_sizes: tuple[int, ...] = (100, 100, 100)
    latent_size: int = 100  # of every weight-transform layer
    horizon: int = 200
    max_meta_batch_size: int = 5  # tasks per meta-iteration
    batch_size: int = 256  # transitions in each of D_tr and D_ts
    inner_lr_init: float = 1e-3
    value_lr: float = 1e-5
    policy_lr: float = 1e-4
    advantage_coef: float = 0.01  # lambda
    temperature: float = 1.0  # T of exp(A / T)
    max_weight: float = 20.0  # clamp of exp(A / T)
    normalize_advantages: bool = True  # standardise A over the batch before exp(A / T) (macaw)
    policy_std: float = 0.2  # fixed sigma of the tanh-mean Gaussian policy (continuous actions)
    inner_steps: int = 1  # at meta-test, the headline's number of adaptation steps
    eval_adapt_steps: int = 1  # meta-test curve after 0..K steps
    eval_episodes: int = 10  # online episodes per test task after adaptation

    def __post_init__(self):
        checks.layer_sizes(self, "hidden_sizes")
        checks.positive(
            self,
            "latent_size",
            "horizon",
            "max_meta_batch_size",
            "batch_size",
            "inner_lr_init",
            "value_lr",
            "policy_lr",
            "temperature",
            "max_weight",
            "policy_std",
            "inner_steps",
            "eval_episodes",
        )
        checks.non_negative(self, "advantage_coef", "eval_adapt_steps")


class MacawData(NamedTuple):
    """The offline data set as device arrays (fields of `FIELDS`): train [K, N, ...], test [M, N,
    ...], and the tasks (pytrees stacked over K and M)."""

    train: dict
    test: dict
    train_tasks: object
    test_tasks: object


def _action_inputs(actions, env: Env):
    return jax.nn.one_hot(actions, env.action_size) if env.discrete else actions


def _standardized(advantages, enabled: bool):
    if not enabled:
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def make_macaw(config: MacawConfig, env: Env, data: MacawData) -> Algorithm:
    num_tasks = config.max_meta_batch_size
    num_train = jax.tree.leaves(data.train)[0].shape[0]
    num_test = jax.tree.leaves(data.test)[0].shape[0]
    hidden = tuple(config.hidden_sizes)
    value_opt = optax.adam(config.value_lr)
    policy_opt = optax.adam(config.policy_lr)

    def init_params(key):
        value_key, policy_key, head_key = jax.random.split(key, 3)
        value = init_wt_mlp(value_key, (env.obs_size, *hidden, 1), config.latent_size)
        policy = {
            "body": init_wt_mlp(
                policy_key, (env.obs_size, *hidden, env.action_size), config.latent_size
            ),
            "advantage_head": init_wt_mlp(
                head_key, (hidden[-1] + env.action_size, 1), config.latent_size
            ),
        }
        return {
            "value": value,
            "policy": policy,
            "value_lrs": awr.init_inner_lrs(split_adapted(value)[0], config.inner_lr_init),
            "policy_lrs": awr.init_inner_lrs(split_adapted(policy)[0], config.inner_lr_init),
        }

    def values_of(value, obs):
        return wt_mlp_apply(value, obs)[..., 0]

    def log_probs_and_advantages(policy, batch):
        outputs, features = wt_mlp_apply(policy["body"], batch["obs"], return_features=True)
        if env.discrete:
            log_probs = jnp.take_along_axis(
                jax.nn.log_softmax(outputs), batch["actions"][..., None], axis=-1
            )[..., 0]
        else:
            log_probs = awr.fixed_std_gaussian_log_prob(
                outputs, batch["actions"], config.policy_std
            )
        head_inputs = jnp.concatenate([features, _action_inputs(batch["actions"], env)], -1)
        return log_probs, wt_mlp_apply(policy["advantage_head"], head_inputs)[..., 0]

    def adapt_value(params, batch):
        adapted, fixed = split_adapted(params["value"])

        def loss(adapted, fixed):
            values = values_of(merge(adapted, fixed), batch["obs"])
            return awr.value_regression_loss(values, batch["returns"])

        return merge(awr.inner_sgd_step(loss, adapted, fixed, params["value_lrs"]), fixed)

    def adapt_policy(params, policy, value, batch):
        """One inner step of the policy's latents on AWR + lambda ADV, against the adapted value."""
        values = jax.lax.stop_gradient(values_of(value, batch["obs"]))
        advantages = batch["returns"] - values
        adapted, fixed = split_adapted(policy)

        def loss(adapted, fixed):
            log_probs, predicted = log_probs_and_advantages(merge(adapted, fixed), batch)
            return awr.awr_policy_loss(
                log_probs,
                _standardized(advantages, config.normalize_advantages),
                config.temperature,
                config.max_weight,
            ) + config.advantage_coef * awr.advantage_head_loss(predicted, batch["returns"], values)

        return merge(awr.inner_sgd_step(loss, adapted, fixed, params["policy_lrs"]), fixed)

    def draw(buffers, task_index, key):
        """A batch of `batch_size` transitions of one task's buffer, uniform with replacement."""
        size = jax.tree.leaves(buffers)[0].shape[1]
        rows = jax.random.randint(key, (config.batch_size,), 0, size)
        return {name: buffers[name][task_index, rows] for name in FIELDS}

    def task_losses(params, task_index, key, buffers):
        train_key, test_key = jax.random.split(key)
        train_batch = draw(buffers, task_index, train_key)
        test_batch = draw(buffers, task_index, test_key)
        value = adapt_value(params, train_batch)
        policy = adapt_policy(params, params["policy"], value, train_batch)
        value_loss = awr.value_regression_loss(
            values_of(value, test_batch["obs"]), test_batch["returns"]
        )
        test_values = jax.lax.stop_gradient(values_of(value, test_batch["obs"]))
        log_probs, _ = log_probs_and_advantages(policy, test_batch)
        test_advantages = _standardized(
            test_batch["returns"] - test_values, config.normalize_advantages
        )
        policy_loss = awr.awr_policy_loss(
            log_probs, test_advantages, config.temperature, config.max_weight
        )
        return value_loss, policy_loss

    def init(member: SweepMember, shared: MacawData):
        del shared
        key, init_key = jax.random.split(jax.random.PRNGKey(member.seed))
        params = init_params(init_key)
        return {
            "params": params,
            "opt_state": {
                "value": value_opt.init(_value_part(params)),
                "policy": policy_opt.init(_policy_part(params)),
            },
            "key": key,
            "iteration": jnp.asarray(0, jnp.int32),
        }

    def _value_part(params):
        return {"value": params["value"], "value_lrs": params["value_lrs"]}

    def _policy_part(params):
        return {"policy": params["policy"], "policy_lrs": params["policy_lrs"]}

    def update(state, member: SweepMember, shared: MacawData):
        key, task_key, batch_key = jax.random.split(state["key"], 3)
        indices = draw_slots(task_key, num_tasks, pool_size(member, num_train))
        weights = active_tasks(member, num_tasks) / member.meta_batch_size

        def meta_loss(params):
            value_losses, policy_losses = jax.vmap(task_losses, in_axes=(None, 0, 0, None))(
                params, indices, per_task_keys(batch_key, num_tasks), shared.train
            )
            value_loss, policy_loss = (
                jnp.sum(weights * value_losses),
                jnp.sum(weights * policy_losses),
            )
            return value_loss + policy_loss, (value_loss, policy_loss)

        grads, (value_loss, policy_loss) = jax.grad(meta_loss, has_aux=True)(state["params"])
        params = state["params"]
        value_updates, value_state = value_opt.update(
            _value_part(grads), state["opt_state"]["value"], _value_part(params)
        )
        policy_updates, policy_state = policy_opt.update(
            _policy_part(grads), state["opt_state"]["policy"], _policy_part(params)
        )
        params = {
            **optax.apply_updates(_value_part(params), value_updates),
            **optax.apply_updates(_policy_part(params), policy_updates),
        }
        metrics = {
            "optim/value_loss": value_loss,
            "optim/policy_loss": policy_loss,
            "optim/inner_lr_value": jnp.mean(
                jnp.concatenate([x.ravel() for x in jax.tree.leaves(params["value_lrs"])])
            ),
            "optim/inner_lr_policy": jnp.mean(
                jnp.concatenate([x.ravel() for x in jax.tree.leaves(params["policy_lrs"])])
            ),
        }
        new_state = {
            "params": params,
            "opt_state": {"value": value_state, "policy": policy_state},
            "key": key,
            "iteration": state["iteration"] + 1,
        }
        return new_state, metrics

    def act(policy, deterministic):
        def choose(key, obs):
            outputs = wt_mlp_apply(policy["body"], obs)
            if env.discrete:
                return jax.random.categorical(key, outputs)
            mean = jnp.tanh(outputs)
            if not deterministic:
                mean = mean + config.policy_std * jax.random.normal(key, mean.shape)
            return jnp.clip(mean, -1.0, 1.0) * env.action_bound

        return choose

    def evaluate_task(params, buffers, task_index, task, key):
        """Online returns after 0..K offline adaptation steps on one test task."""
        adapt_keys = jax.random.split(jax.random.fold_in(key, 0), config.eval_adapt_steps)
        run_keys = jax.random.split(jax.random.fold_in(key, 1), config.eval_adapt_steps + 1)

        def returns_of(policy, run_key):
            transitions = collect_transitions(
                env, act(policy, True), task, run_key, config.eval_episodes, config.horizon
            )
            return jnp.mean(episode_returns(transitions))

        def adapt(carry, adapt_key):
            value, policy = carry
            batch = draw(buffers, task_index, adapt_key)
            step_params = {**params, "value": value, "policy": policy}
            value = adapt_value(step_params, batch)
            policy = adapt_policy(step_params, policy, value, batch)
            return (value, policy), policy

        _, policies = jax.lax.scan(adapt, (params["value"], params["policy"]), adapt_keys)
        policies = jax.tree.map(
            lambda first, rest: jnp.concatenate([first[None], rest]), params["policy"], policies
        )
        return jax.vmap(returns_of)(policies, run_keys)

    def evaluate(state, member: SweepMember, shared: MacawData):
        del member
        _, data_key = evaluation_keys(state["iteration"])
        returns = jax.vmap(evaluate_task, in_axes=(None, None, 0, 0, 0))(
            state["params"],
            shared.test,
            jnp.arange(num_test),
            shared.test_tasks,
            per_task_keys(data_key, num_test),
        ).mean(axis=0)
        metrics = {f"eval/return_step{k}": returns[k] for k in range(config.eval_adapt_steps + 1)}
        metrics["eval/return"] = returns[min(config.inner_steps, config.eval_adapt_steps)]
        return metrics

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
    )
