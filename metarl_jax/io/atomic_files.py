"""Files that are either whole or absent: written beside their final path, then renamed onto it
(`os.replace` is atomic within a directory), so a process killed mid-write leaves the previous
version (or nothing) and at most a stale `.tmp` file that the next write replaces."""

import json
import os


def replace_file(path: str, text: str) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def create_file(path: str, text: str) -> None:
    """Like `replace_file`, but never replaces: FileExistsError if `path` exists (a hard link
    of the whole temporary file takes the name, or fails, in one step)."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(temporary, path)
    finally:
        os.unlink(temporary)


def write_json(path: str, value, indent: int | None = 2) -> None:
    replace_file(path, json.dumps(value, indent=indent) + "\n")
