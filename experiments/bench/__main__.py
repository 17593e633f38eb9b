"""Benchmarks that print figures (never timed assertions).

    python -m experiments.bench maml_trpo_nav [--fisher_subsample=0.25] [--repeats=5]
    python -m experiments.bench envs [--env_batch_sizes=64,256,1024] [--bench_tasks=40]
    python -m experiments.bench locomotion [--locomotion_flagfiles=cpu/maml_trpo_cheetah_dir,...]
    python -m experiments.bench rl2_bandit [--bandit_arms=5] [--bandit_pulls=100]
        [--recurrent_unroll=cell_steps|fused] [--bptt_window=0]
    python -m experiments.bench rl2_cheetah [--rl2_meta_batch_size=100] (same RL² flags)
    python -m experiments.bench sweep [--sweep_members=8] [--sweep_iterations=5]
        [--sweep_layout=packed|masked] [--sweep_setting=inner_lr]
    python -m experiments.bench pearl [--pearl_env=cheetah_dir] [--pearl_grad_steps=200]
    python -m experiments.bench macaw [--macaw_env=cheetah_dir]

Each figure is a mean over --repeats calls after a warm-up call. What a benchmark measures is in its
module's docstring (experiments/bench/NAME.py), its flags in `python -m experiments.bench NAME
--helpfull`. The `sizes:` line says what sizes it ran at: the reference ones, or on a CPU, for the
benchmarks that would take more than about 5 minutes there, smaller ones (--reference_sizes runs the
reference on a CPU too). Only the named benchmark's module is imported, so MuJoCo is loaded only
by envs, locomotion, rl2_cheetah, pearl and macaw, whose environments are MuJoCo's.

Like every experiment app, it runs with the XLA CPU flag that `experiments/__init__.py` sets
(MJX batches of >= 512 Ant or 1,024 Cheetah episodes otherwise deadlock with jaxlib 0.10.2).
"""

import importlib
import sys

from experiments.app_plumbing import UsageError, run_app
from experiments.bench import measure

BENCHMARKS = {  # name -> the module whose run() measures it
    "maml_trpo_nav": "experiments.bench.maml_trpo_nav",
    "macaw": "experiments.bench.macaw",
    "pearl": "experiments.bench.pearl",
    "envs": "experiments.bench.envs",
    "locomotion": "experiments.bench.locomotion",
    "rl2_bandit": "experiments.bench.rl2_bandit",
    "rl2_cheetah": "experiments.bench.rl2_cheetah",
    "sweep": "experiments.bench.sweep",
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in BENCHMARKS:
        raise UsageError(f"usage: python -m experiments.bench {{{','.join(BENCHMARKS)}}}")
    benchmark = importlib.import_module(BENCHMARKS[argv[1]])
    measure.use_the_apps_matmul_precision()
    benchmark.run()
    return 0


def entry_point() -> None:
    named = [arg for arg in sys.argv[1:] if arg in BENCHMARKS]
    if named:  # its flags must exist before absl parses the command line
        importlib.import_module(BENCHMARKS[named[0]])
    run_app(main)


if __name__ == "__main__":
    entry_point()
