"""The study report: what the runs of experiments (a)–(f) say, as Markdown with figures.

    python -m experiments.report RUN_DIR... [--out_dir=DIR]

Each RUN_DIR is a directory written by `python -m experiments.main` (flags.txt, metrics.csv,
summary.json). Runs are grouped by their `--experiment`: (a) number of training tasks, (b) MACAW
with its offline data, (c) meta-batch size, (d) out-of-sample vs in-sample tasks, (e) MAML's
test-time gradient steps on out-of-sample tasks, (f) the final return over a grid of one or two
settings swept with --sweep against the run's reference setting (shown only when given); runs
outside the study come last. Writes `<out_dir>/report.md` and PNG figures in `<out_dir>/figures/`
(default `--out_dir`: runs/report_<timestamp>).

Numbers: the final evaluation return of a sweep member is `eval/return` at the run's last logged
iteration, with a 95% Student-t confidence interval over seeds (none with one seed). Every
sentence of a section's reading is generated from these numbers.

Bad input (a directory that is not a run, no directories, runs compared on one plot with
different --horizon / --num_arms / --eval_tasks, two runs with the same (experiment, env, algo,
train_tasks), an existing non-empty --out_dir): one `error: …` line on stderr, exit code 2,
nothing written.

Modules: `loading` reads run directories and checks them, `member_stats` computes every number
once (one `MemberStats` row per run, sweep member and quantity: interval, position between the
levels, convergence verdict), `formatting` writes numbers, intervals and tables, `figures` draws
with matplotlib, `sections` holds one module per section of the report (and what they share),
which only format and compare the rows; `app` writes the report and is the command line.
"""

from experiments.report.app import define_flags, entry_point, generate, main, write_report
from experiments.report.loading import Member, ReportError, Run, check_runs, load_run
from experiments.report.member_stats import MemberStats, StatsTable, build_stats_table
from experiments.report.sections.common import member_table

__all__ = [
    "Member",
    "MemberStats",
    "ReportError",
    "Run",
    "StatsTable",
    "build_stats_table",
    "check_runs",
    "define_flags",
    "entry_point",
    "generate",
    "load_run",
    "main",
    "member_table",
    "write_report",
]
