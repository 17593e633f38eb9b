"""Numeric settings as sweep axes: each member trains with its own value, in one compiled call.

A sweepable setting (`settings.setting(..., sweepable=True)`) is one the algorithm only computes
with. `swept_algorithm` builds the algorithm inside each traced call from the config with that
member's values (`member.hypers`, traced scalars) in place, so every algorithm takes any of its
sweepable settings as an axis without code of its own; members of one pack share their values
(the engine packs only members with equal ones).
"""

from collections.abc import Callable

import jax

from metarl_jax.algos.api import Algorithm, PackLayout, SweepMember
from metarl_jax.algos.settings import with_swept_values


def swept_algorithm(make: Callable, config, env) -> Algorithm:
    """`make(config, env)` whose functions read the swept settings from each member."""
    base = make(config, env)

    def at(hypers) -> Algorithm:
        return make(with_swept_values(config, hypers), env)

    def init(member: SweepMember, *shared):
        return at(member.hypers).init(member, *shared)

    def update(state, member: SweepMember, *shared):
        return at(member.hypers).update(state, member, *shared)

    def evaluate(state, member: SweepMember, *shared):
        return at(member.hypers).evaluate(state, member, *shared)

    def packed_update(states, members: SweepMember, pack: PackLayout):
        first = jax.tree.map(lambda leaf: leaf[0], members.hypers)
        return at(first).packed_update(states, members, pack)

    return base._replace(
        init=init,
        update=update,
        evaluate=evaluate,
        packed_update=None if base.packed_update is None else packed_update,
    )
