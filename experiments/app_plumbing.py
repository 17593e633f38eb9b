"""What every app does at its edge: one-line usage errors, checks of flag values, the rules that
keep a run directory from being overwritten or resumed with other settings, and the entry point.

An app validates everything before it compiles or writes anything; a bad value raises
`UsageError("--flag: what is wrong")`, which `run_app` prints as one line and exits with code 2.
"""

import datetime
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping

from absl import app, logging

USAGE_EXIT_CODE = 2


class UsageError(Exception):
    pass


def int_list(
    name: str, values: Iterable[str], allow_all: bool = False, distinct: bool = True, minimum=1
) -> tuple[int, ...]:
    """A list flag of integers >= minimum; 'all' (when allowed) is 0."""
    values = list(values)
    if not values:
        raise UsageError(f"--{name}: empty list")
    out = []
    for v in values:
        if allow_all and v.strip() == "all":
            out.append(0)
            continue
        try:
            n = int(v)
        except ValueError:
            raise UsageError(f"--{name}: {v!r} is not an integer") from None
        if n < minimum:
            requirement = "positive" if minimum == 1 else f"at least {minimum}"
            raise UsageError(f"--{name}: {n} must be {requirement}")
        out.append(n)
    if distinct and len(set(out)) != len(out):
        raise UsageError(f"--{name}: repeated value in {','.join(values)}")
    return tuple(out)


def check_positive(name: str, value, allow_zero: bool = False) -> None:
    if not (value >= 0 if allow_zero else value > 0):
        raise UsageError(
            f"--{name}: {value} must be {'non-negative' if allow_zero else 'positive'}"
        )


def check_in_interval(name: str, value, low, high) -> None:
    if not low <= value <= high:
        raise UsageError(f"--{name}: {value} must be in [{low}, {high}]")


def check_one_of(name: str, value, choices: Iterable) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise UsageError(f"--{name}: unknown {value!r}; known: {', '.join(map(str, choices))}")


def check_empty_or_new_dir(flag: str, path: str) -> None:
    """An output directory that holds nothing yet (or does not exist)."""
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UsageError(f"--{flag}: {path} exists and is not an empty directory")


def check_no_file_in_the_way(flag: str, path: str) -> None:
    """The nearest existing ancestor of `path` (or path itself) is a directory."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"--{flag}: {existing} exists and is not a directory")


def check_resumable(
    record_path: str,
    saved: Mapping[str, str],
    current: Mapping[str, str],
    resumable: Iterable[str] = (),
    what: str = "the run",
) -> None:
    """On --resume, every setting but the resumable ones must equal the saved record's."""
    resumable = set(resumable)
    for name in sorted(set(saved) | set(current)):
        if name not in resumable and saved.get(name) != current.get(name):
            raise UsageError(
                f"--resume: flag --{name} differs from {what} in {os.path.dirname(record_path)} "
                f"({current.get(name, 'unset')!s} vs {saved.get(name, 'unset')!s})"
            )


def write_flags_file(path: str, lines: Iterable[str]) -> None:
    """flags.txt: one `--name=value` per line, sorted, reusable as --flagfile."""
    with open(path, "w") as f:
        f.write("\n".join(sorted(lines)) + "\n")


def usage_guarded(main: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
    """`main` with a UsageError printed as one line (exit code 2) and library INFO logs off."""

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)
        try:
            return main(argv)
        except UsageError as error:
            print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
            return USAGE_EXIT_CODE

    return guarded


def run_app(main: Callable[[list[str]], int]) -> None:
    """absl's app.run around `main(argv) -> exit code`, usage errors as one line."""
    guarded = usage_guarded(main)
    app.run(lambda argv: sys.exit(guarded(argv)))


# ----- progress --------------------------------------------------------------------------


def run_seconds(result) -> float:
    """A chunk's wall time less the time JAX spent compiling in it."""
    return max(result.seconds - result.compile_seconds, 1e-9)


def expected_wall_time_line(
    elapsed: float, per_iteration: float, iterations_left: int, compile_seconds: float
) -> str:
    """After a run's first chunk: what the whole run should take, the time spent so far (start,
    compile, first chunk) plus the iterations left at the first chunk's run time (its compile left
    out, its checkpoint counted). `experiments.study` reads this line."""
    total = elapsed + per_iteration * iterations_left
    return (
        f"expected wall time {datetime.timedelta(seconds=round(total))} ({total:.0f} s: "
        f"{elapsed:.0f} s so far, compile {compile_seconds:.0f} s of it, + {iterations_left} "
        f"iterations at {per_iteration:.3f} s, from the first chunk)"
    )


def expected_seconds(line: str) -> float | None:
    """The seconds of an `expected wall time H:MM:SS (N s: ...)` line, else None."""
    found = re.match(r"expected wall time [^(]*\((\d+) s", line)
    return float(found.group(1)) if found else None
