"""Apps that run other apps (the study, Figure 1): each run in its own process, its output kept.

The processes import this checkout and share JAX's persistent compilation cache in
<out_dir>/jax_cache, so that a run's second process (a resume) loads the executables the first
one compiled instead of compiling again.
"""

import os
import subprocess
from typing import NamedTuple


def subprocess_env(out_dir: str) -> dict[str, str]:
    """The runs' environment: this checkout importable, the compilation cache in out_dir."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(out_dir, "jax_cache"))
    return env


class RunOutput(NamedTuple):
    returncode: int
    lines: list[str]


def run_process(command, env) -> RunOutput:
    """One run's process, stdout and stderr together (printed by the caller if it fails)."""
    done = subprocess.run(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return RunOutput(done.returncode, done.stdout.splitlines())


def run_state(run_dir: str) -> tuple[bool, bool]:
    """(finished, started) of a run directory: summary.json written, flags.txt written."""
    finished = os.path.exists(os.path.join(run_dir, "summary.json"))
    started = os.path.exists(os.path.join(run_dir, "flags.txt"))
    return finished, started


def stream_process(command, env, prefix: str = "") -> int:
    """One run's process with its output relayed line by line as it comes (long runs); its
    exit code."""
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout:
            print(f"{prefix}{line.rstrip()}", flush=True)
        return process.wait()
