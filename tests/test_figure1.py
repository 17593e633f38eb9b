"""experiments.figure1: the figure, the table and the reading from finished runs' files (made by
hand here: the real runs take hours), and its bad input."""

import csv
import json
import os
import subprocess
import sys

import pytest

from experiments.report import figure1
from metarl_jax.io.report_stats import confidence_interval

from .conftest import REPO_ROOT

LEVELS = {
    "metric": "eval/return",
    "values": {"zero_action": 0.1, "task_agnostic_bound": 0.0},
    "lower": "task_agnostic_bound",
    "upper": None,
    "about": {},
}


def _fake_run(run_dir, algo, finals, before_column, converged, horizon=100):
    """A finished run of 2 seeds and 4 logged iterations whose last row holds `finals`
    {column: [seed 0, seed 1]}; earlier rows lower."""
    os.makedirs(run_dir)
    columns = ["iteration", "env_steps", "seed", "meta_batch_size", "eval/return",
               "eval/return_dir_backward", "eval/return_dir_forward", before_column]  # fmt: skip
    rows = []
    for iteration in (10, 20, 30, 40):
        for seed in (0, 1):
            row = {"iteration": iteration, "env_steps": iteration * 1000, "seed": seed}
            row["meta_batch_size"] = 20
            for column in columns[4:]:
                row[column] = finals[column][seed] * iteration / 40
            rows.append(row)
    with open(os.path.join(run_dir, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "algo": algo,
        "env": "cheetah_dir",
        "levels": {"eval": LEVELS},
        "members": [{"convergence": {"converged": converged}}],
    }
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f)
    with open(os.path.join(run_dir, "flags.txt"), "w") as f:
        f.write(f"--algo={algo}\n--horizon={horizon}\n")


def _finals(both, forward, backward, before, before_column="eval/return_episode0"):
    """The final values of a fake run, each [seed 0, seed 1]."""
    return {"eval/return": both, "eval/return_dir_forward": forward,
            "eval/return_dir_backward": backward, before_column: before}  # fmt: skip


def _fake_pearl_run(tmp_path):
    """A fake PEARL run whose final direction average is 100 and 101 (a tight interval)."""
    finals = _finals([100.0, 101.0], [99.0, 100.0], [101.0, 102.0], [5.0, 6.0])
    _fake_run(tmp_path / "pearl", "pearl", finals, "eval/return_episode0", True)


def test_figure_table_and_reading_from_runs(tmp_path):
    maml = _finals([100.0, 120.0], [90.0, 110.0], [110.0, 130.0], [-1.0, -3.0], "eval/return_step0")
    _fake_run(tmp_path / "maml_trpo", "maml_trpo", maml, "eval/return_step0", True)
    rl2 = _finals([5.0, -5.0], [40.0, 30.0], [-30.0, -40.0], [0.0, 1.0])
    _fake_run(tmp_path / "rl2", "rl2_ppo", rl2, "eval/return_episode0", False)
    results = {algo: figure1.run_results(str(tmp_path / algo)) for algo in ("maml_trpo", "rl2")}
    figure1.write_outputs(results, str(tmp_path))
    assert os.path.getsize(tmp_path / "figure1.png") > 10_000
    with open(tmp_path / "table.csv") as f:
        table = {row["algorithm"]: row for row in csv.DictReader(f)}
    ci = confidence_interval([100.0, 120.0])  # t(0.975, 1) = 12.706: 110 ± 127.1
    assert table["maml_trpo"]["after adaptation (both directions)"] == (
        f"{ci.mean:.1f} ± {ci.half_width:.1f}"
    )
    assert table["maml_trpo"]["before adaptation"].startswith("-2.0 ±")
    assert table["rl2"]["forward"].startswith("35.0 ±")
    assert table["rl2"]["convergence"] == "still changing"
    assert table["maml_trpo"]["seed paper (horizon 200)"] == "250"
    reading = "\n".join(figure1.reading(results))
    # two seeds give a wide interval: 110 ± 127 reaches below 0, so no claim of inference
    assert "- maml_trpo: does not show inference" in reading
    assert "- rl2: does not show inference" in reading
    assert "no decline over its last half" in reading  # the fake curves rise to their end
    assert "Order of the final means: maml_trpo > rl2" in reading
    assert "(not the seed's order" in reading  # the seed has RL² above MAML-TRPO
    assert "horizon other than the seed's 200" in reading
    text = (tmp_path / "table.md").read_text()
    assert "task_agnostic_bound 0.0" in text


def test_inference_is_claimed_only_when_the_interval_clears_zero(tmp_path):
    _fake_pearl_run(tmp_path)
    results = {"pearl": figure1.run_results(str(tmp_path / "pearl"))}
    assert "- pearl: infers the direction" in "\n".join(figure1.reading(results))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only=maml_trpo,sac"], "--only: ['sac'] not among"),
        (["unexpected"], "unexpected arguments"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out_dir = tmp_path / "figure"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.figure1", f"--out_dir={out_dir}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_dry_run_lists_the_cpu_preset(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.figure1", f"--out_dir={tmp_path / 'f'}", "--dry_run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for algo in figure1.ALGORITHMS:
        assert f"flags/cpu/{algo}_cheetah_dir.flags" in result.stdout
    assert not (tmp_path / "f").exists()


def test_bench_locomotion_refuses_a_missing_flag_file():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.bench", "locomotion",
         "--locomotion_flagfiles=cpu/maml_trpo_cheetah_dir,cpu/no_such_file"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no flag file" in result.stderr and "no_such_file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "machine" not in result.stdout


def test_a_curve_that_peaks_and_falls_is_a_decline(tmp_path):
    finals = _finals([50.0, 52.0], [50.0, 52.0], [50.0, 52.0], [0.0, 1.0])
    _fake_run(tmp_path / "rl2", "rl2_ppo", finals, "eval/return_episode0", False)
    rows = figure1.read_rows(str(tmp_path / "rl2" / "metrics.csv"))
    final = figure1.confidence_interval([50.0, 52.0])  # 51 ± 12.7
    assert not figure1.declined(rows, final)  # rising: 12.75, 25.5, 38.25, 51
    for row in rows:  # the third logged evaluation 100 above the rest: a peak, then a fall
        if row["iteration"] == "30":
            row["eval/return"] = str(float(row["eval/return"]) + 100.0)
    assert figure1.declined(rows, final)
