"""Argument checks shared by every public class and function of the package.

Every check raises `ValueError` with one message convention::

    Owner: `name` must be <what is valid>; received name=<value>.

where ``Owner`` is the class (``type(self).__name__``) or the function that
received the argument. Each check returns the value it accepted, normalised
(an int given for a float range becomes a float).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

from keras.optimizers.schedules import LearningRateSchedule


def refuse(owner: str, name: str, value: Any, expected: str) -> NoReturn:
    """Raises the package's `ValueError` for `name=value`."""
    raise ValueError(
        f"{owner}: `{name}` must be {expected}; received {name}={value!r}."
    )


def is_number(value: Any) -> bool:
    """True for an int or a float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_range(
    owner: str,
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_closed: bool = True,
    high_closed: bool = False,
    schedule: bool = False,
) -> Any:
    """`value` as a float if it lies in the interval from `low` to `high`.

    The interval is closed at `low` and open at `high` unless `low_closed` or
    `high_closed` say otherwise; NaN is never in it. With `schedule=True` a
    `keras.optimizers.schedules.LearningRateSchedule` is accepted as is.
    """
    if schedule and isinstance(value, LearningRateSchedule):
        return value
    if is_number(value) and not math.isnan(value):
        above = value >= low if low_closed else value > low
        below = value <= high if high_closed else value < high
        if above and below:
            return float(value)
    interval = "{}{}, {}{}".format(
        "[" if low_closed else "(", low, high, "]" if high_closed else ")"
    )
    expected = "a float in " + interval
    if schedule:
        expected += " or a keras.optimizers.schedules.LearningRateSchedule"
    refuse(owner, name, value, expected)


def check_integer(
    owner: str, name: str, value: Any, low: int, high: int | None = None
) -> int:
    """`value` if it is an int (not a bool) in [low, high] (no upper bound
    without `high`)."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    ):
        return value
    expected = (
        f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    )
    refuse(owner, name, value, expected)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[Any]) -> Any:
    """`value` if it is one of `choices`."""
    if isinstance(value, bool) or value not in choices:
        refuse(owner, name, value, f"one of {tuple(choices)}")
    return value


def check_bool(owner: str, name: str, value: Any) -> bool:
    """`value` if it is True or False (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        refuse(owner, name, value, "True or False")
    return value
