"""MACAW's settings and their checks (`algos.macaw` builds the algorithm from them)."""

import dataclasses

from metarl_jax.algos import config_checks as checks
from metarl_jax.algos import settings
from metarl_jax.algos.settings import setting


@dataclasses.dataclass(frozen=True)
class MacawConfig:
    hidden_sizes: tuple[int, ...] = settings.hidden_sizes((100, 100, 100))
    wt_latent_size: int = setting(
        100, "MACAW: size of the latent vector of every weight-transform layer (what adapts)."
    )
    horizon: int = 200
    max_meta_batch_size: int = 5  # tasks per meta-iteration
    batch_size: int = settings.batch_size()
    initial_inner_lr: float = setting(
        1e-3,
        "MACAW: initial value of the inner loop's learned per-parameter step sizes.",
        sweepable=True,
    )
    value_lr: float = setting(
        1e-5, "MACAW: outer Adam learning rate of the value function.", sweepable=True
    )
    policy_lr: float = setting(
        1e-4, "MACAW: outer Adam learning rate of the policy.", sweepable=True
    )
    advantage_coef: float = setting(
        0.01, "MACAW: weight lambda of the advantage-head loss.", sweepable=True
    )
    awr_temperature: float = setting(1.0, "MACAW: temperature T of the weights exp(A/T).")
    max_awr_weight: float = setting(20.0, "MACAW: clamp of the weights exp(A/T).")
    standardize_advantages: bool = setting(
        True, "MACAW: standardise A over the batch before exp(A/T) (as macaw)."
    )
    policy_std: float = setting(
        0.2, "MACAW: fixed standard deviation of the policy (continuous actions)."
    )
    inner_steps: int = settings.inner_steps()
    eval_adapt_steps: int = settings.eval_adapt_steps(1)
    eval_episodes: int = settings.eval_episodes(10)
    eval_seed: int = settings.eval_seed()

    def __post_init__(self):
        checks.layer_sizes(self, "hidden_sizes")
        checks.positive(
            self,
            "wt_latent_size",
            "horizon",
            "max_meta_batch_size",
            "batch_size",
            "initial_inner_lr",
            "value_lr",
            "policy_lr",
            "awr_temperature",
            "max_awr_weight",
            "policy_std",
            "eval_episodes",
        )
        checks.non_negative(self, "advantage_coef")
        if self.inner_steps != 1:
            checks.fail("inner_steps", self.inner_steps, "1: MACAW takes one inner step")
        if self.eval_adapt_steps < 1:
            checks.fail(
                "eval_adapt_steps", self.eval_adapt_steps, ">= 1: eval/return is after one step"
            )
