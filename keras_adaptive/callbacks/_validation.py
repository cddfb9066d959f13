"""Argument checks shared by the callbacks: ``ValueError`` naming the parameter."""

from __future__ import annotations

import math
from typing import Any


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` lies in the given interval."""
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    interval = (
        f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}"
        f"{right}"
    )
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"`{name}` must be {kind} in {interval}; received {value!r}")
    if integer and not isinstance(value, int):
        raise ValueError(f"`{name}` must be {kind} in {interval}; received {value!r}")
    if math.isnan(value):
        raise ValueError(f"`{name}` must be {kind} in {interval}; received {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"`{name}` must be {kind} in {interval}; received {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}; "
            f"received {value!r}"
        )
