"""flags.txt, the run's record of its flags: one `--name=value` per line, reusable as --flagfile.

absl writes a boolean as `--name` or `--noname` (no `=`); every other flag carries `=`. No flag of
this project is a boolean whose own name starts with "no", so the two cases cannot be confused.
This module defines no flags: the app, the report and the tests all read flags.txt through it.
"""


def parse_flag_lines(lines) -> dict[str, str]:
    """{name: value}; booleans as "true"/"false"; a repeated flag (--sweep) as its values joined
    by newlines, in order. Raises ValueError on a line that is no flag."""
    values = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("--"):
            raise ValueError(f"line {number} is not a flag: {line!r}")
        name, sep, value = line[2:].partition("=")
        if sep:
            values[name] = f"{values[name]}\n{value}" if name in values else value
        elif name.startswith("no"):
            values[name[2:]] = "false"
        else:
            values[name] = "true"
    return values


def read_flags_file(path: str) -> dict[str, str]:
    with open(path) as f:
        return parse_flag_lines(f)
