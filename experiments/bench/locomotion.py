"""locomotion: a MAML-TRPO and an RL² training iteration on Cheetah-Direction at the CPU flag
files' sizes (experiments/flags/cpu/), their env steps/s beside raw MuJoCo C's on the same
machine (`mujoco.rollout` on every core, the same batch of episodes, horizon and frame skip, no
JAX), and where the rest of the iteration goes: the collection (env interaction, with MAML's
inner step) against the whole update (the learning).

Each iteration is timed in its own process (`experiments.bench.training_iteration`, which reads
the flag file as a run would: physics auto, native on a CPU), one member, compile excluded.

Last lines: locomotion_train_vs_native_c: R for each algorithm (the training loop's env steps/s
over raw MuJoCo C's).
"""

import json
import os
import subprocess
import sys

from absl import flags

from experiments.app_plumbing import UsageError
from experiments.bench.envs import native_c_env_steps_per_s
from experiments.bench.measure import machine_description

FLAGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flags")
flags.DEFINE_list(
    "locomotion_flagfiles",
    ["cpu/maml_trpo_cheetah_dir", "cpu/rl2_cheetah_dir"],
    "locomotion: flag files (under experiments/flags, without .flags) whose iteration is timed.",
)
FLAGS = flags.FLAGS


def flagfile_paths() -> list[str]:
    paths = [os.path.join(FLAGS_DIR, f"{name}.flags") for name in FLAGS.locomotion_flagfiles]
    missing = [path for path in paths if not os.path.exists(path)]
    if missing or not paths:
        raise UsageError(f"--locomotion_flagfiles: no flag file {missing[0] if missing else ''}")
    return paths


def time_iteration(path: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "experiments.bench.training_iteration", f"--flagfile={path}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise UsageError(f"timing {path} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> None:
    paths = flagfile_paths()
    print(f"machine: {machine_description()}")
    for path in paths:
        flagfile = os.path.relpath(path, FLAGS_DIR)
        timing = time_iteration(path)
        train_rate = timing["env_steps_per_iteration"] / timing["iteration_seconds"]
        collect_rate = timing["env_steps_per_iteration"] / timing["collection_seconds"]
        robot = "ant" if timing["env"].startswith("ant") else "cheetah"
        raw_c = native_c_env_steps_per_s(robot, timing["physics_batch"], timing["horizon"], 2)
        learning = timing["iteration_seconds"] - timing["collection_seconds"]
        name = timing["algo"]
        print(
            f"{flagfile}: {name} on {timing['env']} ({timing['physics']} physics), "
            f"{timing['env_steps_per_iteration']:,.0f} env steps per iteration in "
            f"{timing['iteration_seconds']:.2f} s (first call with compile "
            f"{timing['first_call_seconds']:.1f} s)"
        )
        print(
            f"  collection {timing['collection_seconds']:.2f} s "
            f"({timing['collection_seconds'] / timing['iteration_seconds']:.0%} of the "
            f"iteration, {collect_rate:,.0f} env steps/s), learning {learning:.2f} s "
            f"({learning / timing['iteration_seconds']:.0%})"
        )
        print(
            f"  raw MuJoCo C: {raw_c:,.0f} env steps/s (batch {timing['physics_batch']}, horizon "
            f"{timing['horizon']}); the training loop: {train_rate:,.0f} env steps/s"
        )
        print(f"locomotion_train_vs_native_c: {train_rate / raw_c:.3f} ({name})", flush=True)
