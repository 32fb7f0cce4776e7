"""Argument checks shared by the tuners and the sampler: errors name the argument and value."""

from __future__ import annotations

from typing import Any


def check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int >= ``minimum`` (or None if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{name}={value!r}; expected {expected}.")
