"""Checks every algorithm config runs on construction, so a library user gets the same one-line
errors as the apps: `ConfigError("<field>: <value> must be ...")`, raised before anything traces."""

import math
from collections.abc import Iterable


class ConfigError(ValueError):
    pass


def fail(name: str, value, requirement: str):
    raise ConfigError(f"{name}: {value!r} must be {requirement}")


def positive(config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
            fail(name, value, "positive")


def non_negative(config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not value >= 0 or (isinstance(value, float) and not math.isfinite(value)):
            fail(name, value, ">= 0")


def in_unit_interval(config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            fail(name, value, "in [0, 1]")


def in_range(config, name: str, low, high) -> None:
    value = getattr(config, name)
    if not low <= value <= high:
        fail(name, value, f"in [{low}, {high}]")


def one_of(config, name: str, choices: Iterable) -> None:
    choices = tuple(choices)
    if getattr(config, name) not in choices:
        fail(name, getattr(config, name), f"one of {choices}")


def layer_sizes(config, *names: str) -> None:
    for name in names:
        sizes = getattr(config, name)
        if not sizes or any(not isinstance(s, int) or s <= 0 for s in sizes):
            fail(name, sizes, "a non-empty tuple of positive widths")
