"""Reference levels: what frames an evaluation return from below (random or goal-agnostic play)
and above (the best achievable), computed on the very tasks an evaluation plays.

A level set is a plain dict, as summary.json stores it:
    {"metric": the metric the levels are in (without its prefix),
     "values": {level name: value}, "lower": a level name, "upper": a level name or None,
     "about": {level name: how it was computed}}

- bandit (`reward_per_step`: reward per pull over a trial of n pulls, adaptation included):
  random, thompson and gittins play the tasks (same key), best_arm is the mean of the tasks'
  largest arm probability (an oracle that reads the task), bayes_optimal the exact expected value
  of Bayes-optimal play over n pulls under the U[0, 1] prior (dynamic programming; left out where
  its state space is too large). Lower random; upper bayes_optimal, else best_arm.
- navigation (`return` of one episode): stay_at_start (lower) and fastest_to_goal (upper), the
  scripted policies of `baselines.navigation` rolled out on the tasks.
- locomotion (`return` of one episode): zero_action, rolled out on the tasks (the lower level);
  on Cheetah-Dir the task-agnostic bound 0 (the lower level there); where the project has
  measured one (`baselines.measured`), the return of a policy that sees its task (the upper
  level).

An app may add levels of its own (`extra_levels`, e.g. returns a paper reports): they join the
set, and where the env has no upper level the best of them becomes it.
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.baselines.bandits import play
from metarl_jax.baselines.bayes_optimal import BayesOptimalOutOfReach, bayes_optimal_value
from metarl_jax.baselines.measured import ORACLE_RETURNS, MeasuredLevel
from metarl_jax.baselines.navigation import scripted_returns
from metarl_jax.envs import LOCOMOTION_ENV_NAMES, Env
from metarl_jax.rl.rollout import run_episodes

GITTINS_MAX_PULLS = 200  # its index table grows with n²; longer trials keep thompson only


# The quantity algorithms are compared on, per environment (the metric after its prefix):
# bandits compare the reward per pull over the whole trial, adaptation pulls included (the RL²
# paper's total reward); elsewhere the return of the episode after adaptation.
HEADLINE_METRIC = {"bandit": "reward_per_step"}
DEFAULT_HEADLINE_METRIC = "return"


def headline_metric(env_name: str) -> str:
    return HEADLINE_METRIC.get(env_name, DEFAULT_HEADLINE_METRIC)


def reference_levels(
    env: Env,
    tasks,
    key: jax.Array,
    trial_steps: int,
    extra_levels: Mapping[str, MeasuredLevel] | None = None,
) -> dict | None:
    """The level set of `env` on `tasks` [N, ...]; `trial_steps` = env steps one evaluation plays
    on a task (the bandit's n); `extra_levels` join it (name -> value and how it was obtained).
    None for an environment without levels."""
    extra = dict(extra_levels or {})
    if env.name == "bandit":
        return _with_extra(_bandit_levels(tasks, key, trial_steps), extra)
    if env.name == "navigation":
        values = scripted_returns(env, tasks, key)
        level_set = _level_set(
            DEFAULT_HEADLINE_METRIC,
            values,
            "stay_at_start",
            "fastest_to_goal",
            {
                "stay_at_start": "zero action every step, rolled out on the tasks",
                "fastest_to_goal": "each step to the point of the action box nearest the goal, "
                "rolled out on the tasks (an oracle; the optimal return)",
            },
        )
        return _with_extra(level_set, extra)
    if env.name in LOCOMOTION_ENV_NAMES:
        return _locomotion_levels(env, tasks, key, extra)
    return None


def _with_extra(level_set: dict, extra: Mapping[str, MeasuredLevel]) -> dict:
    """The level set with `extra` levels joined; the best of them its upper level if it had none."""
    if not extra:
        return level_set
    upper = level_set["upper"]
    if upper is None:
        upper = max(extra, key=lambda name: extra[name].value)
    return {
        **level_set,
        "values": {**level_set["values"], **{n: float(e.value) for n, e in extra.items()}},
        "about": {**level_set["about"], **{n: e.about for n, e in extra.items()}},
        "upper": upper,
    }


def _locomotion_levels(env: Env, tasks, key: jax.Array, extra: Mapping[str, MeasuredLevel]) -> dict:
    values = {"zero_action": zero_action_return(env, tasks, key)}
    about = {"zero_action": "zero torque every step, rolled out on the tasks"}
    lower, upper = "zero_action", None
    if env.name == "cheetah_dir":
        values["task_agnostic_bound"] = 0.0
        about["task_agnostic_bound"] = (
            "the most a policy that ignores the direction can score averaged over both "
            "directions (the task flips the velocity term's sign; the control cost is >= 0)"
        )
        lower = "task_agnostic_bound"
    level_set = _level_set(DEFAULT_HEADLINE_METRIC, values, lower, upper, about)
    return with_stored_oracle(_with_extra(level_set, extra), env.name, env.horizon)


def with_stored_oracle(level_set: dict, env_name: str, horizon: int) -> dict:
    """The level set with the oracle return stored for (env, horizon) (`baselines.measured`) as
    its upper level; unchanged where none is stored."""
    oracle = ORACLE_RETURNS.get((env_name, horizon))
    if oracle is None:
        return level_set
    return {
        **level_set,
        "values": {**level_set["values"], "oracle": float(oracle.value)},
        "about": {**level_set["about"], "oracle": oracle.about},
        "upper": "oracle",
    }


def _bandit_levels(tasks, key, num_pulls: int) -> dict:
    played = ("random", "thompson", "gittins")[: 3 if num_pulls <= GITTINS_MAX_PULLS else 2]
    values = {name: float(jnp.mean(play(name, tasks, num_pulls, key))) for name in played}
    values["best_arm"] = float(jnp.mean(jnp.max(tasks.arm_probs, axis=-1)))
    about = {
        "random": "a uniformly random arm every pull",
        "thompson": "Thompson sampling from Beta(1, 1) priors",
        "gittins": "the Gittins index policy (bandits baselines)",
        "best_arm": "the tasks' best arm every pull (an oracle)",
    }
    upper = "best_arm"
    try:
        num_arms = tasks.arm_probs.shape[-1]
        values["bayes_optimal"] = bayes_optimal_value(num_arms, num_pulls) / num_pulls
        about["bayes_optimal"] = (
            f"exact expected value of Bayes-optimal play over {num_pulls} pulls, U[0, 1] prior"
        )
        upper = "bayes_optimal"
    except BayesOptimalOutOfReach:
        pass
    per_pull = f"; reward per pull over {num_pulls} pulls"
    about = {name: text + per_pull for name, text in about.items() if name in values}
    return _level_set(headline_metric("bandit"), values, "random", upper, about)


def zero_action_return(env: Env, tasks, key: jax.Array) -> float:
    """Mean return of one zero-action episode per task."""
    num_tasks = jax.tree.leaves(tasks)[0].shape[0]

    def one(task, task_key):
        act = lambda _, obs: (jnp.zeros((obs.shape[0], env.action_size)), ())
        return jnp.sum(run_episodes(env, act, task, task_key, 1, env.horizon).reward)

    return float(jnp.mean(jax.jit(jax.vmap(one))(tasks, jax.random.split(key, num_tasks))))


def _level_set(metric, values, lower, upper, about) -> dict:
    return {
        "metric": metric,
        "values": {name: float(v) for name, v in values.items()},
        "lower": lower,
        "upper": upper,
        "about": about,
    }


def levels_framing(levels: dict, metric: str, prefix: str = "eval") -> dict | None:
    """The level set computed for `prefix` if it is in `metric` (the headline), else None."""
    found = levels.get(prefix)
    return found if found and found["metric"] == metric else None


def level_span(levels: dict | None) -> float | None:
    """The distance from the lower level to the upper one (None without both)."""
    if not levels or levels.get("upper") is None:
        return None
    return abs(levels["values"][levels["upper"]] - levels["values"][levels["lower"]])


def position(levels: dict, value: float) -> float | None:
    """Where `value` lies from the lower level (0) to the upper one (1); None without an upper
    level or when the two coincide."""
    if not levels or levels.get("upper") is None:
        return None
    low, high = levels["values"][levels["lower"]], levels["values"][levels["upper"]]
    if not np.isfinite(value) or np.isclose(high, low):
        return None
    return float((value - low) / (high - low))
