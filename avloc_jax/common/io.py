"""Files that are never left half-written: write a temporary sibling, then rename."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` writes the file's content to `tmp` (`path.tmp`), which is then renamed
    to `path`: `path` is the old file or the whole new one, never a part. A `write` that
    raises leaves no temporary file and `path` untouched."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically (see `atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | os.PathLike, payload: Any, indent: int | None = 1) -> Path:
    """`payload` as JSON, atomically (see `atomic_write_text`)."""
    return atomic_write_text(path, json.dumps(payload, indent=indent))
