"""Where a command's words go: one object handed to every long operation instead of separate
``log``, ``warn`` and ``progress`` arguments.

``log`` takes the summary lines (silenced by ``--quiet``), ``warn`` what the user must read even
then (a damaged file, a resumed training), ``progress`` whether bars are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def silent(*_):
    """A log that prints nothing."""


@dataclass(frozen=True)
class Output:
    log: Callable[[str], None] = print
    warn: Callable[[str], None] | None = None  # None: the same as log
    progress: bool = True

    @classmethod
    def of(cls, echo: Callable[[str], None], quiet: bool = False) -> "Output":
        """A command's output: everything through ``echo``; with ``quiet``, warnings only and no bars."""
        return cls(log=silent if quiet else echo, warn=echo, progress=not quiet)

    def notice(self, text: str):
        """What the user must read even with --quiet."""
        (self.warn or self.log)(text)
