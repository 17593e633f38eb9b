"""Numbers, confidence intervals and Markdown tables as the report writes them."""

import math
import re

from metarl_jax.io import report_stats as stats


def num(x: float | None) -> str:
    """Four significant digits, no exponent for returns in the thousands."""
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.4g}"


def signed(x: float) -> str:
    text = num(x)
    return text if text.startswith("-") else f"+{text}"


def ci_range(iv: stats.Interval | None) -> str:
    if iv is None:
        return "—"
    if not iv.has_interval:
        return "none (1 seed)"
    return f"[{num(iv.low)}, {num(iv.high)}]"


def ci_text(iv: stats.Interval | None) -> str:
    """ "mean ± half-width", or the mean and why there is no interval."""
    if iv is None:
        return "—"
    if not iv.has_interval:
        return f"{num(iv.mean)} (1 seed, no interval)"
    return f"{num(iv.mean)} ± {num(iv.half_width)}"


def value_with_ci(iv: stats.Interval | None) -> str:
    """For prose: "mean (95% CI [lo, hi])"."""
    if iv is None:
        return "no value"
    if not iv.has_interval:
        return f"{num(iv.mean)} (one seed, no interval)"
    return f"{num(iv.mean)} (95% CI [{num(iv.low)}, {num(iv.high)}])"


def overlap_text(overlap: bool | None) -> str:
    return {True: "overlap", False: "do not overlap", None: "cannot be compared (one seed)"}[
        overlap
    ]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    escape = lambda cell: str(cell).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "run"


def join_distinct(items) -> str:
    """The items, each once in first-seen order, comma-separated."""
    items = list(dict.fromkeys(str(i) for i in items))
    return ", ".join(items)
