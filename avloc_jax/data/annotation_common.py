"""What every annotation reader shares: the error type, file checks, string and snippet helpers.

The readers themselves live per format: `ave_annotations` (AVE), `wtalc_annotations`
(the W-TALC folders of ActivityNet1.2 and THUMOS14) and `activitynet_json` (ActivityNet-format
ground truth and predictions); `annotations` gathers them under one import path.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

PathLike = str | os.PathLike


class DataError(ValueError):
    """A user's data file is missing or does not have the expected content."""


def as_text(value: Any) -> str:
    """bytes / np.bytes_ / str -> str (the W-TALC files mix them)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def require_file(path: PathLike, what: str) -> Path:
    """`path` as a Path, or DataError if it is not an existing file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what}: file not found: {path}")
    return path


def load_npy(path: PathLike, what: str) -> np.ndarray:
    """np.load with pickles allowed and Python-2 strings kept as bytes."""
    path = require_file(path, what)
    try:
        return np.load(path, allow_pickle=True, encoding="bytes")
    except Exception as err:  # corrupt or not a .npy file: say which file
        raise DataError(f"{what}: cannot read {path} as a NumPy .npy file: {err}") from err


def open_h5(path: PathLike, key: str, what: str):
    """(h5py.File, dataset) for lazy row reads; DataError if the file or key is missing.

    The caller closes the file. Datasets are not read here: AVE's visual_feature.h5 is
    4143x10x7x7x512 float32 (4 GB).
    """
    import h5py

    path = require_file(path, what)
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{what}: cannot open {path} as HDF5: {err}") from err
    if key not in handle:
        keys = sorted(handle.keys())
        handle.close()
        raise DataError(f"{what}: {path} has no dataset {key!r} (keys: {keys})")
    return handle, handle[key]


# ----------------------------------------------------------------------------- snippets


def snippet_labels_from_segments(
    segments: np.ndarray, classes: np.ndarray, duration: float, num_snippets: int, background: int
) -> np.ndarray:
    """int32 [T]: the class of the segment covering each snippet's centre, else `background`.

    Snippet t spans [t, t+1) * duration / T (the mapping ``t_sec = index * duration / T``).
    Where segments of different classes overlap, the first listed segment wins.
    segments: [K, 2] seconds; classes: [K] int.
    """
    labels = np.full(num_snippets, background, np.int32)
    centres = (np.arange(num_snippets) + 0.5) * duration / max(num_snippets, 1)
    # Reverse order so that the first listed segment is written last and wins.
    for (start, end), cls in reversed(
        list(zip(np.asarray(segments).reshape(-1, 2), np.asarray(classes)))
    ):
        labels[(centres >= start) & (centres < end)] = int(cls)
    return labels


def segments_from_snippet_labels(
    snippet_labels: np.ndarray, background: int, snippet_seconds: float = 1.0
):
    """(float32 [K, 2] seconds, int32 [K]) runs of equal non-background snippet labels."""
    segments, classes = [], []
    labels = np.asarray(snippet_labels)
    t = 0
    while t < len(labels):
        cls = int(labels[t])
        end = t
        while end < len(labels) and labels[end] == cls:
            end += 1
        if cls != background:
            segments.append((t * snippet_seconds, end * snippet_seconds))
            classes.append(cls)
        t = end
    return np.asarray(segments, np.float32).reshape(-1, 2), np.asarray(classes, np.int32)


def is_real(value: Any) -> bool:
    """A real number other than a bool: a `true` score or bound is a bug, not 1.0."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def as_float(number: Any) -> float:
    """A JSON number as a float; an integer beyond the float range (valid JSON) becomes
    ±inf, which the checks then refuse in one line instead of a traceback."""
    try:
        return float(number)
    except OverflowError:
        return float("inf") if number > 0 else float("-inf")
