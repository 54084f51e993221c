"""The run log's format: `W/metrics.jsonl`, one JSON object per event, with its step.

Other tools (`avloc plot`, the README's tables) read this file, so its layout is a
contract: every line has ``event`` ("train", "eval", "final", "preempted"), ``step`` and
``time``; the remaining keys are scalars (non-finite floats as strings) and, for eval and
final events, the ``split``. `engine.writers.JsonLinesWriter` writes it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.common.workdir import Workdir


def _scalar(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__array__"):
        value = np.asarray(value)
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def to_record(event: str, step: int, values: Mapping[str, Any]) -> dict[str, Any]:
    """One metrics.jsonl line (as a dict): bookkeeping keys first, then the values."""
    record: dict[str, Any] = {"event": event, "step": int(step), "time": time.time()}
    record.update({k: _scalar(v) for k, v in values.items()})
    return record


def read_metrics(workdir: Path | str) -> list[dict[str, Any]]:
    path = Workdir(workdir).metrics_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
