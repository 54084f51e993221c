"""The W-TALC annotation folders of ActivityNet1.2 and THUMOS14, and their layouts.

A folder holds NumPy files aligned by row: ``classlist.npy`` (bytes), ``subset.npy``,
``videoname.npy``, ``url.npy`` (ActivityNet: the YouTube id is after ``v=``),
``duration.npy`` ([N] or [N, 1]), ``segments.npy`` and ``labels.npy`` (object arrays of
per-video lists), ``labels_all.npy``. Some were pickled by Python 2, so every file is read
with ``encoding='bytes'`` and strings may be bytes or str: both are normalised to str
here. A `WtalcLayout` says how one benchmark uses a folder (ActivityNet1.2: every row, ids
from url.npy; THUMOS14: the 20-class detection rows, ids = video names); `LAYOUTS` has
both. See docs/data.md and METHOD_NOTES §6.

Everything that can be wrong with a user's file raises `DataError` naming the file, the
row or video, and what was expected.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.data.activitynet_json import (
    GroundTruthVideo,
    ground_truth_payload,
    write_ground_truth,
)
from avloc_jax.data.annotation_common import DataError, PathLike, as_text, load_npy


@dataclasses.dataclass(frozen=True)
class WtalcAnnotations:
    """A W-TALC annotation folder: N rows (videos), aligned by row.

    video_ids:      [N] the id used in GT JSON and feature folders (YouTube id from url.npy
                    for ActivityNet; videoname.npy otherwise).
    video_names:    [N] videoname.npy entries (ActivityNet: ``video_N``, not an id).
    subsets:        [N] e.g. training / validation / test.
    durations:      float64 [N] seconds.
    segments:       [N] float32 [K_i, 2] (start, end) seconds.
    segment_labels: [N] K_i class names (labels.npy).
    labels_all:     [N] video-level class names (labels_all.npy; may be a wider class set).
    """

    folder: Path
    class_names: tuple[str, ...]
    video_ids: tuple[str, ...]
    video_names: tuple[str, ...]
    subsets: tuple[str, ...]
    durations: np.ndarray
    segments: tuple[np.ndarray, ...]
    segment_labels: tuple[tuple[str, ...], ...]
    labels_all: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.video_ids)

    def rows(self, subset: str | None = None, *, annotated_only: bool = False) -> np.ndarray:
        """int64 row indices in file order, of one subset (None: all) and optionally only
        the rows with at least one segment."""
        keep = [
            i
            for i in range(len(self))
            if (subset is None or self.subsets[i] == subset)
            and (not annotated_only or len(self.segments[i]))
        ]
        return np.asarray(keep, np.int64)

    def segment_classes(self, row: int) -> np.ndarray:
        """int32 [K] class indices of row's segments (checked at read time)."""
        index = {name: c for c, name in enumerate(self.class_names)}
        return np.asarray([index[name] for name in self.segment_labels[row]], np.int32)

    def video_labels(self, row: int) -> np.ndarray:
        """float32 [C] multi-hot labels: the classes of the row's segments."""
        labels = np.zeros(len(self.class_names), np.float32)
        labels[self.segment_classes(row)] = 1.0
        return labels


def youtube_id(url: str) -> str:
    """The YouTube id of a watch URL (the ``v`` query value; else the text after the last '=')."""
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    if query.get("v"):
        return query["v"][0]
    return url.rsplit("=", 1)[-1]


def _string_column(folder: Path, name: str, n: int | None) -> tuple[str, ...]:
    array = load_npy(folder / name, f"W-TALC {name}").reshape(-1)
    if n is not None and len(array) != n:
        raise DataError(
            f"{folder / name}: expected {n} rows (one per video, like subset.npy), got {len(array)}"
        )
    return tuple(as_text(x) for x in array)


def _list_column(folder: Path, name: str, n: int) -> list[list[Any]]:
    array = load_npy(folder / name, f"W-TALC {name}")
    if array.ndim != 1 or len(array) != n:
        raise DataError(
            f"{folder / name}: expected an object array of {n} per-video lists, got shape "
            f"{array.shape}"
        )
    return [list(x) if x is not None else [] for x in array]


def read_wtalc_annotations(
    folder: PathLike, *, classlist: str = "classlist.npy", id_source: str = "auto"
) -> WtalcAnnotations:
    """Reads and checks a W-TALC annotation folder.

    Args:
      folder: the folder (e.g. ``ActivityNet1.2-Annotations``).
      classlist: the class-list file name; THUMOS14 detection uses ``classlist_20classes.npy``.
      id_source: 'url' (YouTube id from url.npy), 'videoname', or 'auto' (url if present).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"W-TALC annotation folder not found: {folder}")
    subsets = _string_column(folder, "subset.npy", None)
    n = len(subsets)
    class_names = _string_column(folder, classlist, None)
    video_names = _string_column(folder, "videoname.npy", n)
    if id_source == "auto":
        id_source = "url" if (folder / "url.npy").is_file() else "videoname"
    if id_source == "url":
        video_ids = tuple(youtube_id(u) for u in _string_column(folder, "url.npy", n))
    elif id_source == "videoname":
        video_ids = video_names
    else:
        raise ValueError(f"id_source must be 'url', 'videoname' or 'auto', got {id_source!r}")
    for i, vid in enumerate(video_ids):
        if not vid:
            raise DataError(f"{folder}: row {i} has an empty video id (from {id_source})")

    durations = load_npy(folder / "duration.npy", "W-TALC duration.npy")
    if durations.ndim == 2 and durations.shape[1] == 1:  # THUMOS14 stores [N, 1]
        durations = durations[:, 0]
    if durations.shape != (n,):
        raise DataError(
            f"{folder / 'duration.npy'}: expected shape [{n}] or [{n}, 1], got "
            f"{list(durations.shape)}"
        )
    durations = durations.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(durations) | (durations <= 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{folder / 'duration.npy'}: row {i} (video {video_ids[i]}) has duration "
            f"{durations[i]}: "
            "expected a finite length > 0 seconds (zero-length video)"
        )

    raw_segments = _list_column(folder, "segments.npy", n)
    raw_labels = _list_column(folder, "labels.npy", n)
    known = set(class_names)
    segments, segment_labels = [], []
    for i in range(n):
        labels = tuple(as_text(x) for x in raw_labels[i])
        if len(labels) != len(raw_segments[i]):
            raise DataError(
                f"{folder}: row {i} (video {video_ids[i]}) has {len(raw_segments[i])} segments in "
                "segments.npy "
                f"but {len(labels)} labels in labels.npy (expected one label per segment)"
            )
        for label in labels:
            if label not in known:
                count = f"{len(class_names)} class" + ("es" if len(class_names) != 1 else "")
                raise DataError(
                    f"{folder / 'labels.npy'}: row {i} (video {video_ids[i]}) has label {label!r}, "
                    f"which is not in {classlist} ({count})"
                )
        try:
            seg = np.asarray(raw_segments[i], np.float64).reshape(-1, 2)
        except (ValueError, TypeError) as err:
            raise DataError(
                f"{folder / 'segments.npy'}: row {i} (video {video_ids[i]}): expected a list of "
                "[start, end] "
                f"pairs, got {raw_segments[i]!r}"
            ) from err
        if not np.all(np.isfinite(seg)) or np.any(seg[:, 1] < seg[:, 0]) or np.any(seg < 0):
            raise DataError(
                f"{folder / 'segments.npy'}: row {i} (video {video_ids[i]}): expected finite "
                "segments with "
                f"0 <= start <= end, got {seg.tolist()}"
            )
        segments.append(seg.astype(np.float32))
        segment_labels.append(labels)

    labels_all_path = folder / "labels_all.npy"
    if labels_all_path.is_file():
        labels_all = tuple(
            tuple(as_text(x) for x in row) for row in _list_column(folder, "labels_all.npy", n)
        )
    else:  # optional: fall back to the segment labels
        labels_all = tuple(tuple(dict.fromkeys(labels)) for labels in segment_labels)

    return WtalcAnnotations(
        folder=folder,
        class_names=class_names,
        video_ids=video_ids,
        video_names=video_names,
        subsets=subsets,
        durations=durations,
        segments=tuple(segments),
        segment_labels=tuple(segment_labels),
        labels_all=labels_all,
    )


# ----------------------------------------------------------------------------- layouts


@dataclasses.dataclass(frozen=True)
class WtalcLayout:
    """How one benchmark uses a W-TALC folder."""

    name: str
    classlist: str  # class-list file
    id_source: str  # 'url' or 'videoname'
    subsets: tuple[str, ...]  # subsets in the folder, training one first
    annotated_only: bool  # keep only rows with segments (THUMOS14's 20-class detection videos)
    feature_prefix: str  # W-TALC feature file: f"{prefix}-I3D-JOINTFeatures.npy"
    tiou_thresholds: tuple[float, ...]


LAYOUTS: dict[str, WtalcLayout] = {
    "activitynet12": WtalcLayout(
        name="activitynet12",
        classlist="classlist.npy",
        id_source="url",
        subsets=("training", "validation"),
        annotated_only=False,
        feature_prefix="ActivityNet1.2",
        tiou_thresholds=tuple(float(x) for x in np.round(np.linspace(0.5, 0.95, 10), 2)),
    ),
    # THUMOS14: detection uses the 20 classes of classlist_20classes.npy; labels.npy/segments.npy
    # hold only those, so the detection videos are the rows with segments (200 val / 210 test
    # in the W-TALC folder). The other rows are 101-class recognition videos.
    "thumos14": WtalcLayout(
        name="thumos14",
        classlist="classlist_20classes.npy",
        id_source="videoname",
        subsets=("validation", "test"),
        annotated_only=True,
        feature_prefix="Thumos14",
        tiou_thresholds=tuple(float(x) for x in np.round(np.arange(0.1, 0.75, 0.1), 1)),
    ),
}


def get_layout(name: str) -> WtalcLayout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def read_layout(folder: PathLike, layout: str | WtalcLayout) -> WtalcAnnotations:
    """Reads a W-TALC folder the way `layout` uses it."""
    layout = get_layout(layout) if isinstance(layout, str) else layout
    return read_wtalc_annotations(folder, classlist=layout.classlist, id_source=layout.id_source)


def thumos14_detection_classes(folder: PathLike) -> tuple[str, ...]:
    """The 20 THUMOS14 detection classes (``classlist_20classes.npy``)."""
    return _string_column(Path(folder), "classlist_20classes.npy", None)


def layout_rows(annotations: WtalcAnnotations, layout: WtalcLayout, subset: str) -> np.ndarray:
    """Row indices a layout uses for one subset, in file order."""
    if subset not in set(annotations.subsets):
        raise DataError(
            f"{annotations.folder / 'subset.npy'}: no video in subset {subset!r}; "
            f"present: {sorted(set(annotations.subsets))}"
        )
    return annotations.rows(subset, annotated_only=layout.annotated_only)


def check_unique_ids(annotations: WtalcAnnotations, rows: Iterable[int]) -> None:
    """Video ids must be unique: they key GT JSON and feature folders."""
    seen: dict[str, int] = {}
    for row in rows:
        vid = annotations.video_ids[row]
        if vid in seen:
            raise DataError(
                f"{annotations.folder}: rows {seen[vid]} and {row} have the same video id {vid!r}"
            )
        seen[vid] = int(row)


def wtalc_ground_truth(
    annotations: WtalcAnnotations, layout: str | WtalcLayout, subsets: Sequence[str] | None = None
) -> dict:
    """ActivityNet-format GT: ``{"version", "database": {id: {subset, duration, annotations}}}``.

    Segments are written exactly as in the folder (ActivityNet1.2 has 10 zero-length
    [0, 0] segments; THUMOS14 a few that end after the stated duration): the official
    protocol is applied to the official annotations, unedited.
    """
    layout = get_layout(layout) if isinstance(layout, str) else layout
    subsets = tuple(subsets) if subsets else layout.subsets
    videos: dict[str, GroundTruthVideo] = {}
    for subset in subsets:
        rows = layout_rows(annotations, layout, subset)
        check_unique_ids(annotations, rows)
        for row in rows:
            vid = annotations.video_ids[row]
            if vid in videos:
                raise DataError(f"{annotations.folder}: video id {vid!r} appears in two subsets")
            videos[vid] = GroundTruthVideo(
                video_id=vid,
                subset=subset,
                duration=float(annotations.durations[row]),
                segments=annotations.segments[row],
                labels=annotations.segment_labels[row],
            )
    return ground_truth_payload(videos.values(), version=f"avloc-jax {layout.name}")


def write_ground_truth_json(
    folder: PathLike, layout: str, out: PathLike, subsets: Sequence[str] | None = None
) -> dict:
    """Reads a W-TALC folder and writes its ActivityNet-format GT JSON to `out`; returns it."""
    gt = wtalc_ground_truth(read_layout(folder, layout), layout, subsets)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_ground_truth(out, gt)  # never a half-written GT file
    return gt
