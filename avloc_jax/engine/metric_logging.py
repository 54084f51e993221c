"""Run logs in the workdir: `metrics.jsonl`, one JSON object per event, with its step.

Only process 0 writes. Other tools (plots, the README's tables) read this file, so its
layout is a contract: every line has ``step`` and ``event`` ("train", "eval", "final"),
the remaining keys are scalars.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _scalar(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__array__"):
        value = np.asarray(value)
        value = value.item() if value.size == 1 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricLogger:
    """Appends events to `workdir/metrics.jsonl` (process 0 only)."""

    def __init__(self, workdir: Path | str, enabled: bool = True):
        self.path = Path(workdir) / "metrics.jsonl"
        self.enabled = enabled
        self._extra_writers: list[Any] = []

    def add_writer(self, writer: Any) -> None:
        """Another sink with `write(event, step, values)`, e.g. TensorBoard."""
        self._extra_writers.append(writer)

    def write(self, event: str, step: int, values: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"event": event, "step": int(step), "time": time.time()}
        record.update({k: _scalar(v) for k, v in values.items()})
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        for writer in self._extra_writers:
            writer.write(event, int(step), record)

    def close(self) -> None:
        for writer in self._extra_writers:
            if hasattr(writer, "close"):
                writer.close()


def read_metrics(workdir: Path | str) -> list[dict[str, Any]]:
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
