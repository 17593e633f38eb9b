"""PEARL's settings and their checks (`algos.pearl` builds the algorithm from them)."""

import dataclasses
import math

from metarl_jax.algos import config_checks as checks
from metarl_jax.algos import settings
from metarl_jax.algos.settings import setting
from metarl_jax.tasks import Restriction

POSTERIOR_FAMILIES = ("diagonal", "rank_one")
EXPLORATIONS = ("posterior_sampling", "uniform_actions")


@dataclasses.dataclass(frozen=True)
class PearlConfig:
    latent_size: int = setting(5, "PEARL: size of the context variable z.")
    hidden_sizes: tuple[int, ...] = settings.hidden_sizes((300, 300, 300))  # actor and critic
    encoder_hidden_sizes: tuple[int, ...] = setting(
        (200, 200, 200), "PEARL: context encoder layer widths."
    )
    horizon: int = 200
    max_meta_batch_size: int = 4  # tasks per gradient step
    # Slots of the training pool, each with its encoder and RL buffers (the apps: the sweep's
    # largest k, or --task_pool_size for 'all').
    num_task_slots: int = 2
    num_tasks_sample: int = setting(5, "PEARL: training tasks that collect per iteration.")
    initial_steps: int = setting(
        2000, "PEARL: transitions per training task before the first iteration."
    )
    prior_steps: int = setting(
        1000, "PEARL: transitions per sampled task and iteration with z ~ prior."
    )
    posterior_steps: int = setting(
        1000, "PEARL: transitions per sampled task and iteration with z ~ posterior (RL only)."
    )
    grad_steps: int = setting(2000, "PEARL: gradient steps per iteration.")
    batch_size: int = settings.batch_size()
    context_batch_size: int = setting(256, "PEARL: context transitions per task and gradient step.")
    replay_capacity: int = setting(1_000_000, "PEARL: RL buffer capacity per task.")
    gamma: float = settings.gamma()
    tau: float = setting(0.005, "PEARL: Polyak rate of the target critic.", sweepable=True)
    reward_scale: float = setting(5.0, "PEARL: reward scale of the soft Q target.", sweepable=True)
    kl_weight: float = setting(0.1, "PEARL: weight beta of KL(q(z|c) || N(0, I)).", sweepable=True)
    sac_lr: float = setting(
        3e-4, "PEARL: Adam learning rate (actor, critic, encoder).", sweepable=True
    )
    alpha: float = setting(1.0, "PEARL: entropy temperature (initial value if learned).")
    learn_alpha: bool = setting(False, "PEARL: learn the temperature (target entropy -|A|).")
    deterministic_z: bool = setting(
        False, "PEARL: z = the posterior's mean (diagonal: of the factors' means), no KL."
    )
    posterior_family: str = setting(
        "diagonal",
        "PEARL: the posterior q(z | c): diagonal (oyster: a product of axis-aligned Gaussian "
        "factors, one per transition) or rank_one (each transition a linear-Gaussian "
        "observation u.z = c of z, multiplied into N(0, I): evidence along any direction).",
    )
    policy_mean_reg: float = setting(1e-3, "PEARL: weight of the actor's mean regularizer.")
    policy_std_reg: float = setting(1e-3, "PEARL: weight of the actor's log-std regularizer.")
    context_next_obs: bool = setting(
        False, "PEARL: context (s, a, r, s') instead of oyster's (s, a, r)."
    )
    eval_episodes: int = settings.eval_episodes(3)
    eval_deterministic: bool = setting(True, "PEARL: evaluation acts with the mean action.")
    exploration: str = setting(
        "posterior_sampling",
        "PEARL: how the prior phase (initial data, collection's prior episodes, evaluation's "
        "first episode) acts: posterior_sampling (oyster: the policy on z ~ N(0, I)) or "
        "uniform_actions (uniform in [-1, 1]^A; the posterior phase then acts on the "
        "posterior).",
    )
    reward_decoder_weight: float = setting(
        0.0,
        "PEARL: weight of an auxiliary loss training the encoder to predict reward_scale * r "
        "from (s, a, z) (0: none, as oyster).",
    )
    posterior_in_context: bool = setting(
        False,
        "PEARL: the posterior phase's episodes also enter the task's encoder buffer (oyster's "
        "num_steps_posterior), so contexts mix exploration and acting on the posterior as "
        "evaluation's later contexts do (off: the prior phase only, oyster's locomotion configs).",
    )
    critic_trains_encoder: bool = setting(
        True,
        "PEARL: the critic's loss trains the encoder (oyster); with --nocritic_trains_encoder "
        "only the reward decoder and the KL do.",
    )
    train_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    eval_tasks: Restriction = dataclasses.field(default_factory=Restriction)
    task_pool_seed: int = settings.task_pool_seed()
    num_eval_tasks: int = settings.num_eval_tasks()
    eval_train_region: bool = settings.eval_train_region()
    eval_seed: int = settings.eval_seed()

    def __post_init__(self):
        checks.layer_sizes(self, "hidden_sizes", "encoder_hidden_sizes")
        checks.positive(
            self,
            "latent_size",
            "horizon",
            "max_meta_batch_size",
            "num_task_slots",
            "num_tasks_sample",
            "initial_steps",
            "prior_steps",
            "posterior_steps",
            "grad_steps",
            "batch_size",
            "context_batch_size",
            "replay_capacity",
            "reward_scale",
            "sac_lr",
            "alpha",
            "eval_episodes",
            "num_eval_tasks",
        )
        checks.non_negative(
            self, "kl_weight", "reward_decoder_weight", "policy_mean_reg", "policy_std_reg"
        )
        checks.in_unit_interval(self, "gamma", "tau")
        checks.one_of(self, "exploration", EXPLORATIONS)
        checks.one_of(self, "posterior_family", POSTERIOR_FAMILIES)
        if not self.critic_trains_encoder and self.reward_decoder_weight <= 0:
            checks.fail(
                "critic_trains_encoder",
                False,
                "True unless reward_decoder_weight > 0 (else only the KL trains the encoder)",
            )

    def episodes(self, steps: int) -> int:
        """Whole episodes that collect at least `steps` transitions."""
        return math.ceil(steps / self.horizon)

    @property
    def encoder_capacity(self) -> int:
        collected = self.episodes(self.prior_steps)
        if self.posterior_in_context:
            collected += self.episodes(self.posterior_steps)
        return self.horizon * max(self.episodes(self.initial_steps), collected)
