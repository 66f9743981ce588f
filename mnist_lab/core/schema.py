"""One way to check a record read back from a file — a result, a checkpoint's metadata, a cache
entry — before anything uses it: each field named with the kind it must have, checked alike.

A hostile or damaged file may hold anything JSON can: a bool where a number belongs (Python
counts True as 1), an integer too large for a float, a list for a mapping. A kind here refuses
all three; what a caller does with a refusal (a DamagedResult, a cache miss) is its own choice.
"""

from __future__ import annotations

import math

NUMBER = (int, float)
LARGEST_INTEGER = 2**63  # larger ones would overflow wherever a float or an array takes them


def is_of(value, kind) -> bool:
    """``value`` is of ``kind`` (a type or a tuple of types), a bool is no number, and an integer
    is one a float can hold."""
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    return abs(value) < LARGEST_INTEGER if isinstance(value, int) else True


def is_finite(value) -> bool:
    """A number (is_of NUMBER) that is neither NaN nor infinite."""
    return is_of(value, NUMBER) and (math.isfinite(value) if isinstance(value, float) else True)


def wrong_fields(record, fields: dict) -> list[str]:
    """The names of ``fields`` (name -> kind) that ``record`` lacks or holds with another kind;
    every name when ``record`` is not a mapping."""
    if not isinstance(record, dict):
        return list(fields)
    return [name for name, kind in fields.items() if not is_of(record.get(name), kind)]


def all_of(values, kind) -> bool:
    """Every item of a list, or every value of a mapping, is of ``kind``."""
    items = values.values() if isinstance(values, dict) else values
    return isinstance(values, (list, tuple, dict)) and all(is_of(item, kind) for item in items)
