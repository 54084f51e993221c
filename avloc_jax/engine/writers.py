"""The run's metric writers: clu's `MetricWriter` interface, three sinks.

`create_writer(W)` is a `metric_writers.MultiWriter` of

  JsonLinesWriter    W/metrics.jsonl, the contract (engine/metric_logging.py)
  TensorBoardWriter  W/tensorboard/, event files via tensorboardX (no TensorFlow)
  LoggingWriter      clu's, one log line per write

Each `write_scalars(step, values)` is one event: ``values["event"]`` names it and eval /
final events carry ``values["split"]``; these two are the only non-numeric values. The
writers are synchronous (no `AsyncWriter`): metrics.jsonl lines keep the loop's order and
are on disk when `train_and_evaluate` returns.

TensorBoard tags:

  train   loss/<term>, gate/<modality>_<stage> (mean |g|), learning_rate,
          throughput/{steps,videos}_per_sec, train/<other>
  eval    <split>/<metric>          e.g. validation/average_mAP, validation/accuracy
  final   final/<split>/<metric>    the best-by-val checkpoint's scores, at its step

Non-numeric values and bookkeeping keys are skipped; booleans (is_best) become 0/1.
A tag holds only the characters TensorBoard allows (letters, digits, `_ - . /`); any
other becomes `_`, as tensorboardX would rename it (with a warning per write), so
metrics.jsonl's ``mAP@0.50`` is TensorBoard's ``validation/mAP_0.50``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
import re
import struct
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.common.workdir import Workdir
from avloc_jax.engine import metric_logging


def _without_tensorflow_summary_writer() -> None:
    """Lets `clu.metric_writers` (and `clu.periodic_actions`, which imports it) load
    without TensorFlow, which this project does not depend on: the package's __init__
    imports its TF-based SummaryWriter eagerly. Where TensorFlow is missing, that one
    module is a placeholder whose SummaryWriter says so; nothing here uses it."""
    name = "clu.metric_writers.summary_writer"
    if name in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        return

    class SummaryWriter:
        def __init__(self, *args: Any, **kwargs: Any):
            raise ImportError("clu's SummaryWriter needs TensorFlow; use TensorBoardWriter")

    placeholder = types.ModuleType(name)
    placeholder.SummaryWriter = SummaryWriter  # type: ignore[attr-defined]
    sys.modules[name] = placeholder


_without_tensorflow_summary_writer()

from clu import metric_writers, periodic_actions  # noqa: E402

__all__ = ["metric_writers", "periodic_actions", "create_writer"]

_BOOKKEEPING = frozenset({"event", "step", "time", "split"})
_THROUGHPUT = frozenset({"steps_per_sec", "videos_per_sec"})
# Characters a TensorBoard summary name may not hold (tensorboardX's rule).
_ILLEGAL_TAG_CHARACTERS = re.compile(r"[^-/\w.]")
# metrics.jsonl holds non-finite floats as strings; they are still measurements.
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class JsonLinesWriter(metric_writers.MetricWriter):
    """Appends each `write_scalars` event to `path` as one metrics.jsonl line."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        values = dict(scalars)
        if "event" not in values:
            raise ValueError(f"a metrics.jsonl record needs an 'event'; got keys {sorted(values)}")
        record = metric_logging.to_record(values.pop("event"), step, values)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    # metrics.jsonl holds scalar events only; other kinds of summary go to TensorBoard.
    def write_summaries(
        self, step: int, values: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> None:
        pass

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        pass

    def write_videos(self, step: int, videos: Mapping[str, Any]) -> None:
        pass

    def write_audios(self, step: int, audios: Mapping[str, Any], *, sample_rate: int) -> None:
        pass

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        pass

    def write_histograms(
        self, step: int, arrays: Mapping[str, Any], num_buckets: Mapping[str, int] | None = None
    ) -> None:
        pass

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass  # every line is written and closed at once

    def close(self) -> None:
        pass


def _as_float(value: Any) -> float | None:
    """The scalar value of `value`, or None if it is not a number."""
    if isinstance(value, str):
        return _NON_FINITE.get(value.strip().lower())
    if hasattr(value, "item") and getattr(value, "size", None) == 1:
        value = value.item()  # NumPy / JAX scalars
    if isinstance(value, (bool, numbers.Real)):
        return float(value)
    return None


def legal_tag(name: str) -> str:
    """`name` as a valid TensorBoard summary name: each illegal character becomes `_`."""
    return _ILLEGAL_TAG_CHARACTERS.sub("_", name)


def scalar_tags(event: str, record: Mapping[str, Any]) -> dict[str, float]:
    """The TensorBoard tag -> value map of one event (see the module doc)."""
    split = record.get("split")
    tags: dict[str, float] = {}
    for key, raw in record.items():
        value = _as_float(raw)
        if key in _BOOKKEEPING or value is None:
            continue
        if event == "train":
            if key.startswith(("loss/", "gate/")) or key == "learning_rate":
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
        tags[legal_tag(tag)] = value
    return tags


class TensorBoardWriter(metric_writers.MetricWriter):
    """clu's MetricWriter over tensorboardX: event files under `logdir`.

    flush_secs is short so that a run can be watched live (a few scalars per log step).
    """

    def __init__(self, logdir: Path | str, flush_secs: int = 10):
        from tensorboardX import SummaryWriter  # lazy: importing it loads protobuf

        Path(logdir).mkdir(parents=True, exist_ok=True)
        self._writer: Any = SummaryWriter(logdir=str(logdir), flush_secs=flush_secs)

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        event = str(scalars.get("event", "train"))
        for tag, value in scalar_tags(event, scalars).items():
            self._writer.add_scalar(tag, value, global_step=int(step))

    def write_summaries(
        self, step: int, values: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> None:
        for key, value in values.items():
            self._writer.add_histogram(key, np.asarray(value), global_step=int(step))

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        for key, value in images.items():  # [N, H, W, C], as clu's writers take them
            self._writer.add_images(key, np.asarray(value), int(step), dataformats="NHWC")

    def write_videos(self, step: int, videos: Mapping[str, Any]) -> None:
        for key, value in videos.items():  # [N, T, H, W, C] -> tensorboardX's [N, T, C, H, W]
            video = np.moveaxis(np.asarray(value), -1, 2)
            self._writer.add_video(key, video, global_step=int(step))

    def write_audios(self, step: int, audios: Mapping[str, Any], *, sample_rate: int) -> None:
        for key, value in audios.items():  # [N, T, C]: the first clip, first channel
            clip = np.asarray(value)[0, :, 0]
            self._writer.add_audio(key, clip, int(step), sample_rate=sample_rate)

    def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
        for key, value in texts.items():
            self._writer.add_text(key, value, global_step=int(step))

    def write_histograms(
        self, step: int, arrays: Mapping[str, Any], num_buckets: Mapping[str, int] | None = None
    ) -> None:
        for key, value in arrays.items():
            self._writer.add_histogram(key, np.asarray(value), global_step=int(step))

    def write_hparams(self, hparams: Mapping[str, Any]) -> None:
        self._writer.add_text("hparams", json.dumps(dict(hparams), default=str, indent=1))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file; closing twice is harmless."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def create_writer(workdir: Path, enabled: bool) -> metric_writers.MetricWriter:
    """The run's writer; on processes other than 0 (`enabled=False`) it writes nothing."""
    if not enabled:
        return metric_writers.MultiWriter([])
    return metric_writers.MultiWriter(
        [
            JsonLinesWriter(Workdir(workdir).metrics_path),
            TensorBoardWriter(Workdir(workdir).tensorboard_dir),
            metric_writers.LoggingWriter(),
        ]
    )


def read_scalars(logdir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every event file under `logdir` (for tests and tools).

    Parses the TFRecord framing directly (length, CRC, payload, CRC) and decodes the
    payload with tensorboardX's Event proto, so no TensorFlow is needed.
    """
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
