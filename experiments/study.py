"""The robustness study end to end: experiments (a), (c), (d), (e) for every online algorithm,
(b) for MACAW on an offline data set it makes first, then the report.

Every new run first trains its first chunk alone (`experiments.main --first_chunk_only`), which
prints the run's expected wall time; the study prints them and their total, then runs every run to
its end (resumed from that chunk's checkpoint). JAX's persistent compilation cache
(<out_dir>/jax_cache) hands the second process the executables the first compiled.

    python -m experiments.study --preset=cpu     # navigation, bandits: ~83 min on 2 cores
    python -m experiments.study --preset=gpu     # the seed's sizes: Ant-Dir, Cheetah-Vel
    python -m experiments.study --preset=cpu --out_dir=runs/study --dry_run

Each run is `python -m experiments.main` on a flag file of experiments/flags/study/ with `--algo`
and the preset's overrides, in its own process, into <out_dir>/<flag file>_<algo>. A run that
already finished (its summary.json exists) is kept, so an interrupted study continues where it
stopped when started again with the same --out_dir; a run that stopped half-way resumes from its
last checkpoint. Then `python -m experiments.report` over all runs writes <out_dir>/report.
"""

import datetime
import json
import os
import subprocess
import sys
import time

from absl import flags

from experiments.app_plumbing import UsageError, check_no_file_in_the_way, expected_seconds, run_app
from experiments.run_processes import run_process, run_state, subprocess_env
from experiments.study_presets import DATA_OF, OFFLINE_DATA, PRESETS, STUDY_FLAGS

flags.DEFINE_enum("preset", "cpu", list(PRESETS), "Sizes: cpu (minutes) or gpu (the seed's).")
flags.DEFINE_string("out_dir", None, "Study directory (default: runs/study_<preset>_<timestamp>).")
flags.DEFINE_list("only", [], "Run only these flag files (e.g. a_bandit,d_navigation).")
flags.DEFINE_bool("dry_run", False, "Validate every run's flags and print the plan; run nothing.")
FLAGS = flags.FLAGS


def _main_command(flagfile, algo, overrides, run_dir, extra=()):
    return [
        sys.executable,
        "-m",
        "experiments.main",
        f"--flagfile={os.path.join(STUDY_FLAGS, flagfile + '.flags')}",
        f"--algo={algo}",
        *overrides,
        f"--out_dir={run_dir}",
        *extra,
    ]


class StudyFailed(Exception):
    """A step of the study failed (exit code 1) after printing its output; the message, if any,
    is the closing `error:` line."""


def _selected_runs() -> list:
    runs = PRESETS[FLAGS.preset]()
    if not FLAGS.only:
        return runs
    known = {flagfile for flagfile, _, _ in runs}
    unknown = sorted(set(FLAGS.only) - known)
    if unknown:
        raise UsageError(f"--only: {unknown} not in the {FLAGS.preset} preset ({sorted(known)})")
    return [run for run in runs if run[0] in FLAGS.only]


def _make_offline_data(runs, out_dir: str, env) -> set:
    """Make the data sets MACAW's runs read (their runs validate against them); seconds for
    bandits. On a dry run, the names of those that would be made (their runs go unchecked)."""
    needed = sorted({DATA_OF[flagfile] for flagfile, _, _ in runs if flagfile in DATA_OF})
    not_made = set()
    for name in needed:
        data_dir = os.path.join(out_dir, "offline_data", name)
        if os.path.exists(os.path.join(data_dir, "metadata.json")):
            continue
        if FLAGS.dry_run:
            print(f"  would first make offline data {name} into {data_dir}")
            not_made.add(name)
            continue
        print(f"making offline data {name} -> {data_dir}", flush=True)
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "experiments.make_offline_data",
                *OFFLINE_DATA[name],
                f"--out_dir={data_dir}",
                *(("--resume",) if os.path.exists(data_dir) else ()),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            print(made.stderr.strip()[-2000:], file=sys.stderr)
            raise StudyFailed(f"making offline data {name} failed")
    return not_made


def _planned_runs(runs, out_dir: str) -> list[tuple]:
    """(flagfile, algo, overrides, run_dir, finished, resume) of every run."""
    planned = []
    for flagfile, algo, overrides in runs:
        if flagfile in DATA_OF:
            data_dir = os.path.join(out_dir, "offline_data", DATA_OF[flagfile])
            overrides = (*overrides, f"--offline_data={data_dir}")
        run_dir = os.path.join(out_dir, f"{flagfile}_{algo}")
        finished, started = run_state(run_dir)
        resume = ("--resume",) if started and not finished else ()
        planned.append((flagfile, algo, overrides, run_dir, finished, resume))
    return planned


def _check_planned_flags(planned, not_made: set, env) -> None:
    """Every run's flags validated, in one process, before the first run starts."""
    checked = [p for p in planned if DATA_OF.get(p[0]) not in not_made]
    check = subprocess.run(
        [sys.executable, "-m", "experiments.plan"],
        input=json.dumps([_main_command(*p[:4])[3:] for p in checked]),
        env=env,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        print(
            f"error: could not check the runs' flags: {check.stderr.strip()[-500:]}",
            file=sys.stderr,
        )
        raise StudyFailed()
    errors = json.loads(check.stdout.strip().splitlines()[-1])  # MuJoCo may print above it
    for (flagfile, algo, *_), error in zip(checked, errors, strict=True):
        if error:
            raise UsageError(f"{flagfile} --algo={algo}: {error}")


def _run_all(planned, env) -> None:
    """First every new run's first chunk (its expected wall time, and the preset's total), then
    every unfinished run to its end (resumed; its executables from the compilation cache)."""
    expected = _first_chunks(planned, env)
    started_now = {run_dir for run_dir in expected}
    for i, (flagfile, algo, overrides, run_dir, finished, resume) in enumerate(planned, 1):
        if finished:
            print(f"[{i}/{len(planned)}] {flagfile} {algo}: finished earlier, kept", flush=True)
            continue
        if run_dir in started_now:
            resume = ("--resume",)
        print(f"[{i}/{len(planned)}] {flagfile} {algo} -> {run_dir}", flush=True)
        started = time.perf_counter()
        output = run_process(_main_command(flagfile, algo, overrides, run_dir, resume), env)
        _check_run(output, flagfile, algo)
        final = [line for line in output.lines if line.startswith("iter ")]
        print(f"    {final[-1].strip() if final else ''}", flush=True)
        print(f"    {time.perf_counter() - started:.0f} s", flush=True)


def _first_chunks(planned, env) -> dict[str, float]:
    """Runs every not yet started run's first chunk; {run_dir: expected wall time in s}."""
    new = [p for p in planned if not p[4] and not p[5]]
    if not new:
        return {}
    print(f"first chunks of {len(new)} new run(s), to predict the study's wall time:", flush=True)
    expected = {}
    for flagfile, algo, overrides, run_dir, _, _ in new:
        command = _main_command(flagfile, algo, overrides, run_dir, ("--first_chunk_only",))
        output = run_process(command, env)
        _check_run(output, flagfile, algo)
        seconds = [expected_seconds(line) for line in output.lines]
        expected[run_dir] = next(s for s in seconds if s is not None)
        print(
            f"  {flagfile} {algo}: expected wall time "
            f"{datetime.timedelta(seconds=round(expected[run_dir]))}",
            flush=True,
        )
    unknown = sum(1 for p in planned if p[5])
    print(
        f"expected total of the new runs: "
        f"{datetime.timedelta(seconds=round(sum(expected.values())))}"
        + (f" (+ {unknown} half-finished run(s) resuming, not estimated)" if unknown else ""),
        flush=True,
    )
    return expected


def _check_run(output, flagfile: str, algo: str) -> None:
    if output.returncode != 0:
        print("\n".join(output.lines)[-4000:], file=sys.stderr)
        raise StudyFailed(f"{flagfile} --algo={algo} failed (exit {output.returncode})")


def _report(planned, report_dir: str, env) -> None:
    run_dirs = [run_dir for _, _, _, run_dir, _, _ in planned]
    report = subprocess.run(
        [sys.executable, "-m", "experiments.report", *run_dirs, f"--out_dir={report_dir}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if report.returncode != 0:
        print(report.stderr.strip(), file=sys.stderr)
        raise StudyFailed()
    print(report.stdout.strip().splitlines()[-1] if report.stdout.strip() else "")


def _study(runs, out_dir: str, report_dir: str) -> int:
    env = subprocess_env(out_dir)
    not_made = _make_offline_data(runs, out_dir, env)
    planned = _planned_runs(runs, out_dir)
    _check_planned_flags(planned, not_made, env)
    print(f"study ({FLAGS.preset}): {len(planned)} runs into {out_dir}", flush=True)
    if FLAGS.dry_run:
        for flagfile, algo, overrides, _, finished, _ in planned:
            state = "done" if finished else "to run"
            print(f"  {flagfile} --algo={algo} {' '.join(overrides)} [{state}]")
        return 0
    study_start = time.perf_counter()
    _run_all(planned, env)
    _report(planned, report_dir, env)
    print(f"study done in {time.perf_counter() - study_start:.0f} s; report in {report_dir}")
    return 0


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    runs = _selected_runs()
    out_dir = FLAGS.out_dir or os.path.join(
        "runs", f"study_{FLAGS.preset}_{datetime.datetime.now():%Y%m%d-%H%M%S}"
    )
    check_no_file_in_the_way("out_dir", out_dir)
    report_dir = os.path.join(out_dir, "report")
    if os.path.exists(report_dir):
        raise UsageError(f"--out_dir: {report_dir} already exists; the study is done")
    try:
        return _study(runs, out_dir, report_dir)
    except StudyFailed as failure:
        if failure.args:
            print(f"error: {failure.args[0]}", file=sys.stderr)
        return 1


def entry_point():
    run_app(main)


if __name__ == "__main__":
    entry_point()
