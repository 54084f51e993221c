"""ActivityNet-format JSON: the one module that builds, checks, reads and writes it.

Two layouts, those of the Evaluation code of activitynet/ActivityNet:

* ground truth: ``{"version": str, "database": {video_id: {"subset": str, "duration": s,
  "annotations": [{"label": str, "segment": [start, end]}]}}}``. A video without
  "annotations" has none (ActivityNet's test videos);
* predictions: ``{"version": str, "results": {video_id: [{"label": str, "score": x,
  "segment": [start, end]}]}, "external_data": {...}}``.

Writing: `ground_truth_payload` / `predictions_payload` build the dicts,
`dumps_ground_truth` / `dumps_predictions` give the text of a file (ground truth compact,
predictions one key a line), `write_ground_truth` / `write_predictions` check a payload
and write it atomically.

Reading: `load_json` reads a file (errors name it); `ground_truth_lists`,
`prediction_lists` and `entry_columns` check the layout for the detection evaluator (the
columns of a well-formed file are checked per type, not per value, so that a file of
80,000 predictions costs little); `ground_truth_videos` / `read_ground_truth_videos` read
a ground truth strictly into `GroundTruthVideo`s (durations > 0, 0 <= start <= end), for
building datasets from it; `predictions_by_video` reads predictions into `Prediction`s.

A malformed payload raises `FormatError` (a `DataError`), whose message names the input
(or the file), the video and the entry, and what was expected:
``predictions file 'p.json', video 'v2', entry 2 (0-based): no 'segment' key``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import numpy as np

from avloc_jax.common import io
from avloc_jax.common.wording import plural
from avloc_jax.data.annotation_common import (
    DataError,
    PathLike,
    as_float,
    is_real,
    require_file,
)

GROUND_TRUTH = "ground truth"  # the names of in-memory payloads in messages
PREDICTIONS = "predictions"
GROUND_TRUTH_FILE = "ground-truth file"  # ... and of files, followed by the path
PREDICTIONS_FILE = "predictions file"

DEFAULT_VERSION = "avloc-jax"
# What this project's predictions say about themselves ("external_data" of the layout).
WEAKLY_SUPERVISED = {"used": False, "details": "Weakly supervised: video-level labels only."}

ANNOTATION_KEYS = ("label", "segment")
PREDICTION_KEYS = ("label", "score", "segment")


class FormatError(DataError):
    """A malformed ground-truth or prediction payload; the message says where.

    Attributes:
      source: what holds the entry: "predictions", "ground truth", or a file
        ("predictions file 'p.json'").
      where: e.g. "video 'v1', entry 3 (0-based)"; empty for the top level.
      problem: what is wrong with it.
    """

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source, self.where, self.problem = source, where, problem
        super().__init__(f"{source}, {where}: {problem}" if where else f"{source}: {problem}")

    def in_file(self, path: PathLike, what: str) -> FormatError:
        """The same error, with the file named instead of the kind of input."""
        return FormatError(file_source(path, what), self.where, self.problem)


def file_source(path: PathLike, what: str) -> str:
    """How messages name a file: ``ground-truth file '/data/gt.json'``."""
    return f"{what} {os.fspath(path)!r}"


@dataclasses.dataclass(frozen=True)
class GroundTruthVideo:
    """One video of a ground truth: K annotated segments."""

    video_id: str
    subset: str
    duration: float
    segments: np.ndarray  # [K, 2] (start, end) seconds; float32 when read
    labels: tuple[str, ...]  # [K]


class Prediction(NamedTuple):
    """One detection of a predictions payload."""

    label: str
    score: float
    start: float
    end: float


# ----------------------------------------------------------------------------- writing


def ground_truth_payload(
    videos: Iterable[GroundTruthVideo], version: str = DEFAULT_VERSION
) -> dict[str, Any]:
    """The ground-truth layout of `videos`, in their order (a repeated id keeps the last)."""
    database: dict[str, Any] = {}
    for video in videos:
        segments = np.asarray(video.segments).reshape(-1, 2).tolist()
        if len(segments) != len(video.labels):
            raise ValueError(
                f"video {video.video_id!r}: {plural(len(segments), 'segment')} but "
                f"{plural(len(video.labels), 'label')}"
            )
        database[str(video.video_id)] = {
            "subset": str(video.subset),
            "duration": float(video.duration),
            "annotations": [
                {"label": str(label), "segment": [float(s), float(e)]}
                for (s, e), label in zip(segments, video.labels)
            ],
        }
    return {"version": version, "database": database}


def predictions_payload(
    per_video: Mapping[str, Iterable[tuple[str, float, float, float]]],
    *,
    version: str = DEFAULT_VERSION,
    external_data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The prediction layout of {video id: [(label, score, start, end)]} (`Prediction`s or
    plain tuples); `external_data` defaults to `WEAKLY_SUPERVISED`."""
    results = {
        str(video_id): [
            {"label": str(label), "score": float(score), "segment": [float(s), float(e)]}
            for label, score, s, e in detections
        ]
        for video_id, detections in per_video.items()
    }
    external = WEAKLY_SUPERVISED if external_data is None else external_data
    return {"version": version, "results": results, "external_data": dict(external)}


def dumps_ground_truth(ground_truth: Mapping[str, Any]) -> str:
    """The text of a ground-truth file: compact (ActivityNet's has 20,000 videos)."""
    return json.dumps(ground_truth)


def dumps_predictions(predictions: Mapping[str, Any]) -> str:
    """The text of a predictions file: indented, one key a line."""
    return json.dumps(predictions, indent=1)


def write_ground_truth(path: PathLike, ground_truth: Mapping[str, Any]) -> Path:
    """Checks `ground_truth` (a `FormatError` names the file, nothing is written), then
    writes it to `path` via a temporary file (never half-written)."""
    check_ground_truth(ground_truth, file_source(path, GROUND_TRUTH_FILE))
    return io.atomic_write_text(path, dumps_ground_truth(ground_truth))


def write_predictions(path: PathLike, predictions: Mapping[str, Any]) -> Path:
    """Checks `predictions` (a `FormatError` names the file, nothing is written), then
    writes them to `path` via a temporary file (never half-written)."""
    check_predictions(predictions, file_source(path, PREDICTIONS_FILE))
    return io.atomic_write_text(path, dumps_predictions(predictions))


# ----------------------------------------------------------------------------- reading files


def load_json(path: PathLike, what: str = "file") -> dict:
    """Reads a JSON object; errors name the file (OSError, or DataError: a ValueError)."""
    data = _load_json_value(path, what)
    if not isinstance(data, dict):
        raise DataError(f"{file_source(path, what)} does not hold a JSON object")
    return data


def _load_json_value(path: PathLike, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as err:
        raise OSError(f"cannot read {file_source(path, what)}: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{file_source(path, what)} is not valid JSON: {err}") from None


def read_ground_truth(path: PathLike) -> dict:
    """A ground-truth file, its layout checked (`check_ground_truth`)."""
    data = load_json(path, GROUND_TRUTH_FILE)
    check_ground_truth(data, file_source(path, GROUND_TRUTH_FILE))
    return data


def read_predictions(path: PathLike) -> dict:
    """A predictions file, its layout checked (`check_predictions`)."""
    data = load_json(path, PREDICTIONS_FILE)
    check_predictions(data, file_source(path, PREDICTIONS_FILE))
    return data


def read_ground_truth_videos(path: PathLike) -> list[GroundTruthVideo]:
    """A ground-truth file read strictly (see `ground_truth_videos`); a missing file is a
    DataError."""
    path = require_file(path, "ground-truth JSON")
    data = _load_json_value(path, GROUND_TRUTH_FILE)
    return ground_truth_videos(data, file_source(path, GROUND_TRUTH_FILE))


# ----------------------------------------------------------------------------- checks


def _short(value: Any, limit: int = 60) -> str:
    """repr() of a bad value, cut so that a huge entry does not flood the message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _all_real_types(types: Iterable[type]) -> bool:
    """Whether every one of these types is a real number type other than bool."""
    return all(issubclass(t, numbers.Real) and not issubclass(t, (bool, np.bool_)) for t in types)


# The containers accepted for a list of entries and for a segment, by the fast bulk path
# (per type) and the slow checks (per value) alike, so that the two always agree.
_LIST_TYPES = (list,)
_SEGMENT_TYPES = (list, tuple, np.ndarray)


def _all_subtypes(types: Iterable[type], bases: tuple[type, ...]) -> bool:
    return all(issubclass(t, bases) for t in types)


class Columns(NamedTuple):
    """Every entry of some lists, flattened in order."""

    labels: list  # [N] (hashability not checked: see `entry_columns`)
    scores: list  # [N] real numbers; empty for ground-truth annotations
    bounds: list  # [2N] start, end, start, end, ...


def entry_columns(
    source: str, lists: Mapping[Any, Any], keys: tuple[str, ...], noun: str
) -> Columns:
    """The columns of every entry of `lists` ({video id: entries}), or a `FormatError`
    naming the video and the entry of the first malformed one.

    keys: `ANNOTATION_KEYS` or `PREDICTION_KEYS`; noun: "annotation" or "entry".
    Types are checked per distinct type, not per value, so a large file costs little.
    Labels are not checked here: the caller's dict lookups raise TypeError on an
    unhashable one, and it then calls `raise_first_bad_entry`.
    """
    columns = _bulk_columns(list(lists.values()), with_score="score" in keys)
    if columns is None:
        raise_first_bad_entry(source, lists, keys, noun)
    return columns


def _bulk_columns(lists: list[Any], with_score: bool) -> Columns | None:
    """The columns, or None when any entry is malformed."""
    try:
        if not _all_subtypes(set(map(type, lists)), _LIST_TYPES):
            return None
        flat = list(itertools.chain.from_iterable(lists))
        labels = [d["label"] for d in flat]
        scores = [d["score"] for d in flat] if with_score else []
        segments = [d["segment"] for d in flat]
        if not _all_subtypes(set(map(type, segments)), _SEGMENT_TYPES):
            return None
        if set(map(len, segments)) - {2}:
            return None
        bounds = list(itertools.chain.from_iterable(segments))
        if not (
            _all_real_types(set(map(type, scores))) and _all_real_types(set(map(type, bounds)))
        ):
            return None
    except (KeyError, TypeError):  # a missing key, or an entry that is not an object
        return None
    return Columns(labels, scores, bounds)


def entry_problem(entry: Any, keys: tuple[str, ...]) -> str | None:
    """Why a ground-truth annotation or a prediction is malformed, or None."""
    if not isinstance(entry, Mapping):
        return f"expected an object with {', '.join(map(repr, keys))}; got {_short(entry)}"
    missing = [key for key in keys if key not in entry]
    if missing:
        present = ", ".join(map(repr, entry)) or "none"
        return f"no {missing[0]!r} key (keys present: {present})"
    try:
        hash(entry["label"])
    except TypeError:
        return f"'label' must be a string; got {_short(entry['label'])}"
    if "score" in keys and not is_real(entry["score"]):
        return f"'score' must be a number; got {_short(entry['score'])}"
    segment = entry["segment"]
    if (
        not isinstance(segment, _SEGMENT_TYPES)
        or len(segment) != 2
        or not all(is_real(x) for x in segment)
    ):
        return f"'segment' must be [start, end], two numbers; got {_short(segment)}"
    return None


def raise_first_bad_entry(
    source: str, lists: Mapping[Any, Any], keys: tuple[str, ...], noun: str
) -> NoReturn:
    """Finds the first malformed entry of `lists` ({video id: entries}) and raises a
    FormatError naming the video and the entry.

    Called when the bulk checks failed, so its per-entry Python checks cost nothing on a
    well-formed file.
    """
    for video_id, entries in lists.items():
        if not isinstance(entries, _LIST_TYPES):
            problem = f"expected a list; got {_short(entries)}"
            raise FormatError(source, f"video {video_id!r}", problem)
        for i, entry in enumerate(entries):
            problem_ = entry_problem(entry, keys)
            if problem_ is not None:
                raise FormatError(source, f"video {video_id!r}, {noun} {i} (0-based)", problem_)
    raise AssertionError("the bulk checks rejected entries that pass every check")


def _database(ground_truth: Any, source: str) -> Mapping[Any, Any]:
    if not isinstance(ground_truth, Mapping) or "database" not in ground_truth:
        raise FormatError(source, "", "no 'database' key (expected the ActivityNet GT JSON layout)")
    database = ground_truth["database"]
    if not isinstance(database, Mapping):
        raise FormatError(source, "", "'database' must map video ids to entries")
    return database


def ground_truth_lists(
    ground_truth: Any, subset: str | None, source: str = GROUND_TRUTH
) -> dict[Any, Any]:
    """{video id: annotations} of the videos of `subset` (None: all), in file order.

    The top level and each video's object are checked here (a `FormatError`), the
    annotations by `entry_columns`; a ValueError if no video is in `subset`.
    """
    database = _database(ground_truth, source)
    annotations = _subset_annotations(database, subset, source)
    if not annotations:
        subsets = sorted({str(e.get("subset")) for e in database.values()})
        raise ValueError(f"{source} has no video in subset {subset!r}; subsets present: {subsets}")
    return annotations


def _subset_annotations(
    database: Mapping[Any, Any], subset: str | None, source: str
) -> dict[Any, Any]:
    annotations: dict[Any, Any] = {}
    for video_id, entry in database.items():
        if not isinstance(entry, Mapping):
            problem = f"expected an object with 'subset' and 'annotations'; got {_short(entry)}"
            raise FormatError(source, f"video {video_id!r}", problem)
        if subset is None or entry.get("subset") == subset:
            annotations[video_id] = entry.get("annotations", [])
    return annotations


def prediction_lists(predictions: Any, source: str = PREDICTIONS) -> Mapping[Any, Any]:
    """{video id: detections}; the top level is checked here (a `FormatError`), the
    detections by `entry_columns`."""
    if not isinstance(predictions, Mapping) or "results" not in predictions:
        raise FormatError(
            source, "", "no 'results' key (expected the ActivityNet prediction JSON layout)"
        )
    results = predictions["results"]
    if not isinstance(results, Mapping):
        problem = f"'results' must map video ids to lists of detections; got {_short(results)}"
        raise FormatError(source, "", problem)
    return results


def check_ground_truth(ground_truth: Any, source: str = GROUND_TRUTH) -> None:
    """A `FormatError` unless `ground_truth` has the layout (every video, every annotation)."""
    lists = _subset_annotations(_database(ground_truth, source), None, source)
    labels = entry_columns(source, lists, ANNOTATION_KEYS, "annotation").labels
    _check_hashable(labels, source, lists, ANNOTATION_KEYS, "annotation")


def check_predictions(predictions: Any, source: str = PREDICTIONS) -> None:
    """A `FormatError` unless `predictions` have the layout (every detection)."""
    lists = prediction_lists(predictions, source)
    labels = entry_columns(source, lists, PREDICTION_KEYS, "entry").labels
    _check_hashable(labels, source, lists, PREDICTION_KEYS, "entry")


def _check_hashable(
    labels: list, source: str, lists: Mapping[Any, Any], keys: tuple[str, ...], noun: str
) -> None:
    try:
        set(labels)
    except TypeError:
        raise_first_bad_entry(source, lists, keys, noun)


def subset_counts(ground_truth: Any, source: str = GROUND_TRUTH) -> dict[str, tuple[int, int]]:
    """{subset: (videos, annotations)} in order of first appearance; the layout is checked."""
    check_ground_truth(ground_truth, source)
    counts: dict[str, tuple[int, int]] = {}
    for entry in ground_truth["database"].values():
        videos, annotations = counts.get(str(entry.get("subset")), (0, 0))
        counts[str(entry.get("subset"))] = (
            videos + 1,
            annotations + len(entry.get("annotations", [])),
        )
    return counts


def ground_truth_videos(ground_truth: Any, source: str = GROUND_TRUTH) -> list[GroundTruthVideo]:
    """Every video of a ground truth, checked strictly: each needs a subset and a finite
    duration > 0, each segment 0 <= start <= end (finite). A `FormatError` names the
    video and the annotation; labels become strings."""
    if not isinstance(ground_truth, Mapping):
        raise FormatError(
            source,
            "",
            "expected the ActivityNet layout {'database': {video_id: {...}}}, "
            f"got {_short(ground_truth)}",
        )
    database = _database(ground_truth, source)
    videos = []
    for vid, entry in database.items():
        where = f"video {vid!r}"
        if not isinstance(entry, Mapping) or "subset" not in entry or "duration" not in entry:
            raise FormatError(source, where, "expected keys 'subset', 'duration' and 'annotations'")
        duration = entry["duration"]
        if not is_real(duration):
            raise FormatError(source, where, f"duration must be a number, got {_short(duration)}")
        seconds = as_float(duration)
        if not np.isfinite(seconds) or seconds <= 0:
            raise FormatError(
                source,
                where,
                f"duration {duration}: expected a finite length > 0 seconds (zero-length video)",
            )
        annotations = entry.get("annotations") or []
        if not isinstance(annotations, _LIST_TYPES):
            raise FormatError(source, where, f"expected a list; got {_short(annotations)}")
        segments, labels = [], []
        for k, annotation in enumerate(annotations):
            at = f"{where}, annotation {k} (0-based)"
            problem = entry_problem(annotation, ANNOTATION_KEYS)
            if problem is not None:
                raise FormatError(source, at, problem)
            s, e = (as_float(x) for x in annotation["segment"])
            if not (np.isfinite(s) and np.isfinite(e) and 0 <= s <= e):
                raise FormatError(source, at, f"expected 0 <= start <= end, got [{s}, {e}]")
            segments.append((s, e))
            labels.append(str(annotation["label"]))
        videos.append(
            GroundTruthVideo(
                video_id=str(vid),
                subset=str(entry["subset"]),
                duration=seconds,
                segments=np.asarray(segments, np.float32).reshape(-1, 2),
                labels=tuple(labels),
            )
        )
    if not videos:
        raise FormatError(source, "", "the database is empty")
    return videos


def predictions_by_video(
    predictions: Any, source: str = PREDICTIONS
) -> dict[str, list[Prediction]]:
    """{video id: [Prediction]} of a predictions payload, in file order (checked)."""
    check_predictions(predictions, source)
    return {
        str(video_id): [
            Prediction(str(d["label"]), float(d["score"]), *map(float, d["segment"]))
            for d in detections
        ]
        for video_id, detections in prediction_lists(predictions, source).items()
    }


def count_predictions(predictions: Any, source: str = PREDICTIONS) -> tuple[int, int]:
    """(detections, videos) of a predictions payload (its top level checked)."""
    results = prediction_lists(predictions, source)
    return sum(len(detections) for detections in results.values()), len(results)
