"""The robustness study's design, in one place: its experiments (a)–(f), which algorithms join
which, and the seed paper's reported returns that frame its figures. The apps (`cli`, `study`,
`report`, `figure1`) read them from here; the library knows nothing of the study."""

from collections.abc import Mapping
from typing import NamedTuple

from metarl_jax.algos.registry import ENTRIES
from metarl_jax.baselines.measured import MeasuredLevel


class StudyExperiment(NamedTuple):
    title: str  # the report's section heading
    varies: str  # what it varies, as the --experiment flag's help says


STUDY_EXPERIMENTS: Mapping[str, StudyExperiment] = {
    "a": StudyExperiment("(a) Number of distinct training tasks", "number of training tasks"),
    "b": StudyExperiment("(b) MACAW", "MACAW's number of offline tasks/buffers"),
    "c": StudyExperiment("(c) Meta-batch size", "meta-batch size"),
    "d": StudyExperiment("(d) Out-of-sample tasks", "out-of-sample tasks"),
    "e": StudyExperiment(
        "(e) MAML: test-time gradient steps on out-of-sample tasks", "MAML's test-time steps"
    ),
    "f": StudyExperiment("(f) Sensitivity to step sizes", "step sizes (swept settings)"),
}
EXPERIMENTS = tuple(STUDY_EXPERIMENTS)
# Experiments that sweep the number of training tasks (--num_train_tasks).
NUM_TRAIN_TASKS_EXPERIMENTS = ("a", "b")
# Experiments that evaluate out of sample (--eval_tasks off the training region).
OUT_OF_SAMPLE_EXPERIMENTS = ("d", "e")

# The experiments each algorithm joins: (a), (c), (d) for every online algorithm, (b) for the
# offline one, (e) for MAML (the only one that adapts by gradient steps at test time), (f) for
# every algorithm.
JOINED_EXPERIMENTS: Mapping[str, frozenset[str]] = {
    "maml_trpo": frozenset("acdef"),
    "maml_ppo": frozenset("acdef"),
    "rl2_ppo": frozenset("acdf"),
    "pearl": frozenset("acdf"),
    "macaw": frozenset("bf"),
}
# Experiment (f) sweeps settings with --sweep; its report section draws a grid of at most two.
MAX_SWEPT_SETTINGS = 2


def joins(algo: str, experiment: str) -> bool:
    return experiment in JOINED_EXPERIMENTS.get(algo, frozenset())


def algorithms_for_experiment(experiment: str, discrete_actions: bool) -> tuple[str, ...]:
    """The algorithms that join a study experiment on an env with that kind of actions, in the
    registry's order."""
    return tuple(
        entry.name
        for entry in ENTRIES
        if joins(entry.name, experiment)
        and (entry.discrete_actions if discrete_actions else entry.continuous_actions)
    )


# Cheetah-Direction at horizon 200: the seed paper's reported final returns (REFERENCE.md).
SEED_HORIZON = 200
SEED_CHEETAH_DIR: Mapping[str, float] = {
    "seed_pearl": 1900.0,
    "seed_rl2_ppo": 1100.0,
    "seed_macaw": 900.0,
    "seed_maml_ppo": 750.0,
    "seed_maml_trpo": 250.0,
}


def seed_reported_levels(env_name: str, horizon: int) -> dict[str, MeasuredLevel]:
    """The seed paper's returns as extra reference levels (`baselines.levels`) where they apply:
    Cheetah-Dir at the seed's horizon; none elsewhere."""
    if env_name != "cheetah_dir" or horizon != SEED_HORIZON:
        return {}
    about = "reported by the seed paper (Cheetah-Dir)"
    return {name: MeasuredLevel(value, about) for name, value in SEED_CHEETAH_DIR.items()}
