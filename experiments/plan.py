"""Validate the flags of many runs in one process, before any of them starts.

    echo '[["--flagfile=F", "--algo=maml_trpo"], ...]' | python -m experiments.plan

prints a JSON list with one entry per run: "" when its flags are valid, else the error line
`python -m experiments.main` would print. The study uses it to refuse a bad plan up front.
"""

import json
import sys

from absl import flags

from experiments import cli
from experiments.app_plumbing import UsageError

FLAGS = cli.FLAGS


def check_runs(runs: list[list[str]]) -> list[str]:
    errors = []
    for args in runs:
        FLAGS.unparse_flags()
        try:
            FLAGS(["experiments.main", *args])
            cli.spec_from_flags()
            errors.append("")
        except (flags.Error, UsageError) as error:
            errors.append(str(error).splitlines()[0])
    FLAGS.unparse_flags()
    return errors


if __name__ == "__main__":
    print(json.dumps(check_runs(json.load(sys.stdin))))
