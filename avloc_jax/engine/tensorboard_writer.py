"""TensorBoard event files for a run, written with tensorboardX (no TensorFlow).

A `MetricLogger` sink (`logger.add_writer(TensorBoardWriter(W / "tensorboard"))`): every
event that goes to `metrics.jsonl` also becomes scalars in `W/tensorboard/`, so
`tensorboard --logdir W/tensorboard` shows a run live. `metrics.jsonl` stays the contract;
this is a view of it. Tags:

  train   loss/<term>, learning_rate, throughput/{steps,videos}_per_sec, train/<other>
  eval    <split>/<metric>          e.g. validation/average_mAP, validation/accuracy
  final   final/<split>/<metric>    the best-by-val checkpoint's scores, at its step

Non-numeric values (split names, strings) and bookkeeping keys (event, step, time) are
skipped; booleans (is_best) become 0/1.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Keys every metrics.jsonl record has; they are not measurements.
_BOOKKEEPING = frozenset({"event", "step", "time", "split"})
_THROUGHPUT = frozenset({"steps_per_sec", "videos_per_sec"})
# metric_logging writes non-finite floats as strings; they are still measurements.
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _as_float(value: Any) -> float | None:
    """The scalar value of `value`, or None if it is not a number."""
    if isinstance(value, str):
        return _NON_FINITE.get(value.strip().lower())
    if hasattr(value, "item") and getattr(value, "size", None) == 1:
        value = value.item()  # NumPy / JAX scalars
    if isinstance(value, (bool, numbers.Real)):
        return float(value)
    return None


def scalar_tags(event: str, record: Mapping[str, Any]) -> dict[str, float]:
    """The TensorBoard tag -> value map of one metrics.jsonl record (see the module doc)."""
    split = record.get("split")
    tags: dict[str, float] = {}
    for key, raw in record.items():
        if key in _BOOKKEEPING:
            continue
        value = _as_float(raw)
        if value is None:
            continue
        if event == "train":
            if key.startswith("loss/") or key == "learning_rate":
                tag = key
            elif key in _THROUGHPUT:
                tag = f"throughput/{key}"
            else:
                tag = f"train/{key}"
        elif event == "eval":
            tag = f"{split or 'eval'}/{key}"
        elif event == "final":
            tag = f"final/{split or 'eval'}/{key}"
        else:  # e.g. "preempted": no measurements worth a curve
            continue
        tags[tag] = value
    return tags


class TensorBoardWriter:
    """Writes each logged event as TensorBoard scalars under `logdir`.

    Args:
      logdir: the event-file directory, normally `W/tensorboard`.
      flush_secs: how often pending events reach the disk; short, so a run can be
        watched live (the file is small: a few scalars per logged step).
    """

    def __init__(self, logdir: Path | str, flush_secs: int = 10):
        from tensorboardX import SummaryWriter  # lazy: importing it loads protobuf

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(logdir=str(self.logdir), flush_secs=flush_secs)

    def write(self, event: str, step: int, record: Mapping[str, Any]) -> None:
        """One metrics.jsonl record -> scalars at `step`; `record` may include bookkeeping keys."""
        if self._writer is None:
            return
        wall_time = record.get("time")
        for tag, value in scalar_tags(event, record).items():
            self._writer.add_scalar(tag, value, global_step=int(step), walltime=wall_time)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file; later writes are ignored."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_scalars(logdir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every event file under `logdir` (for tests and tools).

    Parses the TFRecord framing directly (length, CRC, payload, CRC) and decodes the
    payload with tensorboardX's Event proto, so no TensorFlow is needed.
    """
    import struct

    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(logdir).rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            payload = data[offset + 12 : offset + 12 + length]
            offset += 12 + length + 4
            if len(payload) < length:
                break  # a truncated last record (file still being written)
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                number = value.simple_value if value.HasField("simple_value") else None
                if number is None and value.HasField("tensor") and value.tensor.float_val:
                    number = value.tensor.float_val[0]
                if number is not None:
                    scalars.setdefault(value.tag, []).append((int(event.step), float(number)))
    return scalars
