"""The absl flags of the algorithms' settings, made from their config fields.

Every field a config declares with `metarl_jax.algos.settings.setting` becomes one flag of the
same name, typed by the field (bool, int, float, str; a tuple of ints is a list flag) and with the
field's help. A name several configs declare is one flag; its help lists each algorithm's default
where they differ, and `apply_algorithm_defaults` gives an unset flag the chosen algorithm's.
"""

import dataclasses
from collections.abc import Sequence

from absl import flags

from experiments.app_plumbing import int_list
from metarl_jax.algos.registry import AlgorithmEntry
from metarl_jax.algos.settings import HELP, settings_of

FLAGS = flags.FLAGS


def flag_value(field: dataclasses.Field, value):
    """A config value as absl holds it (a list flag holds strings)."""
    return [str(v) for v in value] if _is_int_tuple(field) else value


def _is_int_tuple(field: dataclasses.Field) -> bool:
    return getattr(field.type, "__origin__", None) is tuple


def _declarations(entries: Sequence[AlgorithmEntry]) -> dict[str, list[tuple[str, object]]]:
    """setting name -> [(algorithm name, field)], in registry order."""
    declared: dict[str, list] = {}
    for entry in entries:
        for field in settings_of(entry.config_class):
            declared.setdefault(field.name, []).append((entry.name, field))
    return declared


def _help(name: str, declared) -> str:
    helps = {field.metadata[HELP] for _, field in declared}
    if len(helps) != 1:
        raise ValueError(f"setting {name!r} has {len(helps)} help texts; declare it once")
    text = helps.pop()
    defaults: dict[str, list[str]] = {}
    for algo, field in declared:
        value = field.default
        shown = ",".join(map(str, value)) if _is_int_tuple(field) else str(value)
        defaults.setdefault(shown, []).append(algo)
    if len(defaults) > 1:
        text += " Default: " + "; ".join(f"{', '.join(a)} {v}" for v, a in defaults.items()) + "."
    return text


def define_setting_flags(entries: Sequence[AlgorithmEntry]) -> tuple[str, ...]:
    """Define one flag per setting name of the entries' configs; returns the names."""
    declared = _declarations(entries)
    for name, fields in declared.items():
        field = fields[0][1]
        default, help_text = flag_value(field, field.default), _help(name, fields)
        types = {f.type for _, f in fields}
        if len(types) != 1:
            raise ValueError(f"setting {name!r} is declared with types {types}")
        if field.type is bool:
            flags.DEFINE_bool(name, default, help_text)
        elif field.type is int:
            flags.DEFINE_integer(name, default, help_text)
        elif field.type is float:
            flags.DEFINE_float(name, default, help_text)
        elif field.type is str:
            flags.DEFINE_string(name, default, help_text)
        elif _is_int_tuple(field):
            flags.DEFINE_list(name, default, help_text)
        else:
            raise TypeError(f"setting {name!r}: no flag type for {field.type}")
    return tuple(declared)


def apply_algorithm_defaults(entry: AlgorithmEntry) -> None:
    """Unset flags take the algorithm's defaults (its config's and its registry entry's), so that
    flags.txt records the values the run used."""
    defaults = {f.name: flag_value(f, f.default) for f in settings_of(entry.config_class)}
    defaults.update(entry.reference_defaults)
    for name, value in defaults.items():
        if not FLAGS[name].present:
            FLAGS[name].value = value


def settings_from_flags(config_class) -> dict:
    """The config's settings from the flags of the same names."""
    values = {}
    for field in settings_of(config_class):
        value = FLAGS[field.name].value
        values[field.name] = (
            int_list(field.name, value, distinct=False) if _is_int_tuple(field) else value
        )
    return values
