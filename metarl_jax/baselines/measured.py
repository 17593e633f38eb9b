"""Reference levels measured once in this project and stored, so that every run and figure can
draw them without training them again.

ORACLE_RETURNS[(env name, horizon)]: the evaluation return of a policy trained with its task in
its observation (`envs.with_task_in_observation`), on the balanced evaluation tasks of the env;
`about` says how it was measured. How to measure one again: docs in BUILD_NOTES ("Oracle levels").
"""

from typing import NamedTuple


class MeasuredLevel(NamedTuple):
    value: float
    about: str


ORACLE_RETURNS: dict[tuple[str, int], MeasuredLevel] = {
    ("cheetah_dir", 100): MeasuredLevel(
        433.6,
        "oracle: SAC seeing the direction (experiments/flags/cpu/pearl_cheetah_dir.flags with "
        "--task_in_observation, seed 0, 80 iterations: 8e5 env steps, 8e4 gradient steps), last "
        "evaluation episode on both directions; still rising at the end of its budget (406 -> "
        "434 over its last 10 iterations), so a lower bound on the best achievable",
    ),
}
