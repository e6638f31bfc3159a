"""The one exception type for problems a user can fix (bad input, bad arguments).

The command line turns it into one line on stderr and exit code 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class ConventionError(Exception):
    """A user-facing error: names the file and the object where known, and the cause."""

    def __init__(self, cause: str, *, path: str | Path | None = None, obj: str | None = None):
        # One line for the user: a multi-line cause (often a library's message, such as
        # astropy's table of formats) keeps its first line.
        lines = cause.strip().splitlines()
        self.cause = lines[0] if lines else cause
        self.path = None if path is None else str(path)
        self.obj = obj
        super().__init__(self.message)

    def __reduce__(self):
        # Crosses process boundaries (DataLoader and pool workers) with its path and object.
        return (self.__class__, (self.cause,), {"path": self.path, "obj": self.obj})

    def __str__(self) -> str:
        return self.message

    @property
    def message(self) -> str:
        """``file: object OBJ: cause``, leaving out the parts that are not known."""
        parts = []
        if self.path:
            parts.append(self.path)
        if self.obj is not None:
            parts.append(f"object {self.obj}")
        parts.append(self.cause)
        return ": ".join(parts)
