"""Old names kept for one release after a move, with a `DeprecationWarning`."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

#: The release that removes the names deprecated in 0.3.0.
REMOVED_IN = "0.4.0"


def warn_moved(old: str, new: str, stacklevel: int = 3) -> None:
    """Warns that `old` (a module or a dotted name) is now `new`."""
    warnings.warn(
        f"{old} is deprecated: use {new}. The old name will be removed in "
        f"keras_adaptive {REMOVED_IN}.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def moved_names(module: str, moved: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` serving each name of `moved` (name -> the
    module it moved to) from its new module, with a warning."""

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warn_moved(f"{module}.{name}", f"{moved[name]}.{name}")
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__
