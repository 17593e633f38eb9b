"""The study's flag files: every planned run validates; bad study settings are refused."""

import os

import pytest

from experiments.plan import check_runs
from experiments.study_presets import MAML_ALGOS, ONLINE_ALGOS, PRESETS, STUDY_FLAGS

FLAG_FILES = sorted(name[: -len(".flags")] for name in os.listdir(STUDY_FLAGS))


def _args(flagfile, algo, overrides=()):
    path = os.path.join(STUDY_FLAGS, flagfile + ".flags")
    return [f"--flagfile={path}", f"--algo={algo}", *overrides]


def test_every_flag_file_with_every_algorithm_and_every_preset_run_validates():
    runs = [
        (name, algo, ())
        for name in FLAG_FILES
        for algo in (MAML_ALGOS if name.startswith("e_") else ONLINE_ALGOS)
    ]
    runs += [run for preset in PRESETS.values() for run in preset()]
    errors = check_runs([_args(*run) for run in runs])
    assert [(run[:2], e) for run, e in zip(runs, errors, strict=True) if e] == []
    assert {run[0] for preset in PRESETS.values() for run in preset()} <= set(FLAG_FILES)


def test_every_study_flag_file_runs_five_seeds_or_more():
    for name in os.listdir(STUDY_FLAGS):
        with open(os.path.join(STUDY_FLAGS, name)) as f:
            seeds = [line for line in f if line.startswith("--seeds=")]
        assert len(seeds) == 1 and len(seeds[0].split("=")[1].split(",")) >= 5, name


@pytest.mark.parametrize(
    "flagfile, algo, overrides, flag",
    [
        ("e_navigation", "rl2_ppo", (), "--algo"),  # (e) counts MAML's gradient steps
        ("d_ant_dir", "maml_trpo", ("--train_tasks=range:0,360",), "--train_tasks"),  # whole space
        ("d_navigation", "maml_trpo", ("--train_tasks=full",), "--train_tasks"),
        ("d_navigation", "maml_trpo", ("--noeval_train_region",), "--eval_train_region"),
        ("e_cheetah_vel", "maml_ppo", ("--eval_tasks=range:0,3",), "--eval_tasks"),
        ("d_cheetah_vel", "maml_ppo", ("--train_tasks=range:2,1",), "--train_tasks"),  # empty
        ("a_navigation", "maml_trpo", ("--num_train_tasks=5000",), "--num_train_tasks"),
    ],
)
def test_bad_study_settings_are_refused_naming_the_flag(flagfile, algo, overrides, flag):
    (error,) = check_runs([_args(flagfile, algo, overrides)])
    assert error.startswith(flag), error
