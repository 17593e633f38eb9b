"""The robustness study end to end: experiments (a), (c), (d), (e) for every online algorithm,
(b) for MACAW on an offline data set it makes first, then the report.

    python -m experiments.study --preset=cpu     # navigation, bandits: ~25 min on 2 cores
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

from absl import app, flags

from experiments.study_presets import DATA_OF, OFFLINE_DATA, PRESETS, STUDY_FLAGS

flags.DEFINE_enum("preset", "cpu", list(PRESETS), "Sizes: cpu (minutes) or gpu (the seed's).")
flags.DEFINE_string("out_dir", None, "Study directory (default: runs/study_<preset>_<timestamp>).")
flags.DEFINE_list("only", [], "Run only these flag files (e.g. a_bandit,d_navigation).")
flags.DEFINE_bool("dry_run", False, "Validate every run's flags and print the plan; run nothing.")
FLAGS = flags.FLAGS


def _subprocess_env():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


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


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    runs = PRESETS[FLAGS.preset]()
    if FLAGS.only:
        known = {flagfile for flagfile, _, _ in runs}
        unknown = sorted(set(FLAGS.only) - known)
        if unknown:
            print(
                f"error: --only: {unknown} not in the {FLAGS.preset} preset ({sorted(known)})",
                file=sys.stderr,
            )
            return 2
        runs = [run for run in runs if run[0] in FLAGS.only]
    out_dir = FLAGS.out_dir or os.path.join(
        "runs", f"study_{FLAGS.preset}_{datetime.datetime.now():%Y%m%d-%H%M%S}"
    )
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        print(f"error: --out_dir: {out_dir} exists and is not a directory", file=sys.stderr)
        return 2
    report_dir = os.path.join(out_dir, "report")
    if os.path.exists(report_dir):
        print(f"error: --out_dir: {report_dir} already exists; the study is done", file=sys.stderr)
        return 2
    env = _subprocess_env()

    # Offline data sets first (MACAW's runs validate against them); seconds for bandits.
    needed = sorted({DATA_OF[flagfile] for flagfile, _, _ in runs if flagfile in DATA_OF})
    not_made = set()  # on a dry run: data sets that would be made first (their runs unchecked)
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
            print(f"error: making offline data {name} failed", file=sys.stderr)
            return 1

    # Every run's flags are validated, in one process, before the first run starts.
    planned = []
    for flagfile, algo, overrides in runs:
        if flagfile in DATA_OF:
            data_dir = os.path.join(out_dir, "offline_data", DATA_OF[flagfile])
            overrides = (*overrides, f"--offline_data={data_dir}")
        run_dir = os.path.join(out_dir, f"{flagfile}_{algo}")
        finished = os.path.exists(os.path.join(run_dir, "summary.json"))
        started = os.path.exists(os.path.join(run_dir, "flags.txt"))
        resume = ("--resume",) if started and not finished else ()
        planned.append((flagfile, algo, overrides, run_dir, finished, resume))
    checked = [p for p in planned if DATA_OF.get(p[0]) not in not_made]
    check = subprocess.run(
        [sys.executable, "-m", "experiments.plan"],
        input=json.dumps([_main_command(*p[:4])[3:] for p in checked]),
        env=env,
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        print(f"error: could not check the runs' flags: {check.stderr.strip()[-500:]}")
        return 1
    errors = json.loads(check.stdout.strip().splitlines()[-1])  # MuJoCo may print above it
    for (flagfile, algo, *_), error in zip(checked, errors, strict=True):
        if error:
            print(f"error: {flagfile} --algo={algo}: {error}", file=sys.stderr)
            return 2
    print(f"study ({FLAGS.preset}): {len(planned)} runs into {out_dir}", flush=True)
    if FLAGS.dry_run:
        for flagfile, algo, overrides, _, finished, _ in planned:
            state = "done" if finished else "to run"
            print(f"  {flagfile} --algo={algo} {' '.join(overrides)} [{state}]")
        return 0

    study_start = time.perf_counter()
    for i, (flagfile, algo, overrides, run_dir, finished, resume) in enumerate(planned, 1):
        if finished:
            print(f"[{i}/{len(planned)}] {flagfile} {algo}: finished earlier, kept", flush=True)
            continue
        print(f"[{i}/{len(planned)}] {flagfile} {algo} -> {run_dir}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(
            _main_command(flagfile, algo, overrides, run_dir, resume),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            print(result.stdout[-4000:], file=sys.stderr)
            print(
                f"error: {flagfile} --algo={algo} failed (exit {result.returncode})",
                file=sys.stderr,
            )
            return 1
        final = [line for line in result.stdout.splitlines() if line.startswith("iter ")]
        print(f"    {final[-1] if final else ''}", flush=True)
        print(f"    {time.perf_counter() - started:.0f} s", flush=True)

    run_dirs = [run_dir for _, _, _, run_dir, _, _ in planned]
    report = subprocess.run(
        [sys.executable, "-m", "experiments.report", *run_dirs, f"--out_dir={report_dir}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if report.returncode != 0:
        print(report.stderr.strip(), file=sys.stderr)
        return 1
    print(report.stdout.strip().splitlines()[-1] if report.stdout.strip() else "")
    print(f"study done in {time.perf_counter() - study_start:.0f} s; report in {report_dir}")
    return 0


def entry_point():
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    entry_point()
