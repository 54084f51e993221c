"""The commands' messages on stderr: ``<program>: note: ...`` and ``<program>: error: ...``."""

from __future__ import annotations

import sys


def note(program: str, message: str) -> None:
    """`message` (already starting with e.g. 'note:') on stderr, prefixed by `program`."""
    print(f"{program}: {message}", file=sys.stderr)


def fail(program: str, message: str, code: int) -> int:
    """Prints `program: error: message` on stderr; returns the exit status `code`."""
    print(f"{program}: error: {message}", file=sys.stderr)
    return code
