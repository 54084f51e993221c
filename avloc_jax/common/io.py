"""Files that are never left half-written: write a temporary sibling, then rename."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` via `path.tmp` and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def atomic_write_json(path: str | os.PathLike, payload: Any, indent: int | None = 1) -> Path:
    """`payload` as JSON, atomically (see `atomic_write_text`)."""
    return atomic_write_text(path, json.dumps(payload, indent=indent))
