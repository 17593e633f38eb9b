"""Benchmarks that print figures (never timed assertions): `python -m experiments.bench NAME`.

One module per benchmark, whose docstring says what it measures, registered by name in
`__main__.BENCHMARKS`; `measure` holds what they share.
"""
