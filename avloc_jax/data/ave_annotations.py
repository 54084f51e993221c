"""The AVE annotations (YapengTian/AVE-ECCV18), with errors that say what is wrong.

``Annotations.txt`` has lines ``Category&VideoID&Quality&Start&End`` (an optional header
line), one per video; the event covers the 1-s snippets ``[Start, End)`` of a 10-s clip.
The class index is the order in which a category first appears. Every ``*.h5`` file
stores its array under the key ``'avadataset'``, the split files
``{train,val,test}_order.h5`` under ``'order'``, and row i of every file is line i of
Annotations.txt (see docs/data.md and METHOD_NOTES §6).

Everything that can be wrong with a user's file raises `DataError` naming the file, the
line or row, and what was expected.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from avloc_jax.data.annotation_common import DataError, PathLike, open_h5, require_file

AVE_SNIPPETS = 10  # AVE clips are 10 s, one snippet per second
AVE_H5_KEY = "avadataset"
AVE_ORDER_KEY = "order"


@dataclasses.dataclass(frozen=True)
class AveAnnotations:
    """Parsed ``Annotations.txt``: N videos.

    class_names: the categories in order of first appearance (C of them).
    video_ids:   [N] YouTube ids (AVE repeats 45 ids: one clip can hold two events).
    classes:     int32 [N] class index of each video's event.
    starts/ends: int32 [N] the event covers snippets [start, end) (may be empty).
    """

    class_names: tuple[str, ...]
    video_ids: tuple[str, ...]
    classes: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def read_ave_annotations(path: PathLike, num_snippets: int = AVE_SNIPPETS) -> AveAnnotations:
    """Reads AVE ``Annotations.txt`` (with or without a header line)."""
    path = require_file(path, "AVE annotations")
    lines = path.read_text(encoding="utf-8").splitlines()
    class_index: dict[str, int] = {}
    ids: list[str] = []
    classes: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("&")]
        if len(fields) != 5:
            raise DataError(
                f"{path}, line {line_no}: expected 5 '&'-separated fields "
                f"Category&VideoID&Quality&Start&End, got {len(fields)}: {line!r}"
            )
        category, video_id, _quality, start_text, end_text = fields
        try:
            start, end = int(start_text), int(end_text)
        except ValueError as err:
            if not ids:  # a header line (e.g. "Category&VideoID&Quality&StartTime&EndTime")
                continue
            raise DataError(
                f"{path}, line {line_no}: Start/End must be integers, got {start_text!r}, "
                f"{end_text!r}"
            ) from err
        # Start == End occurs once in the real file (line 27, "0&0"): an empty event, so the
        # clip is all background in labels_closs.h5; it keeps its video-level label.
        if not 0 <= start <= end <= num_snippets:
            raise DataError(
                f"{path}, line {line_no} (video {video_id}): expected 0 <= Start <= End <= "
                f"{num_snippets}, "
                f"got Start={start}, End={end}"
            )
        # Class index = order of first appearance, as in the AVE code and its label files.
        classes.append(class_index.setdefault(category, len(class_index)))
        ids.append(video_id)
        starts.append(start)
        ends.append(end)
    if not ids:
        raise DataError(f"{path}: no annotation lines")
    return AveAnnotations(
        class_names=tuple(class_index),
        video_ids=tuple(ids),
        classes=np.asarray(classes, np.int32),
        starts=np.asarray(starts, np.int32),
        ends=np.asarray(ends, np.int32),
    )


def ave_snippet_labels(annotations: AveAnnotations, num_snippets: int = AVE_SNIPPETS) -> np.ndarray:
    """int32 [N, num_snippets]: the event's class on [start, end), C (background) elsewhere."""
    t = np.arange(num_snippets)[None, :]
    inside = (t >= annotations.starts[:, None]) & (t < annotations.ends[:, None])
    return np.where(inside, annotations.classes[:, None], annotations.num_classes).astype(np.int32)


def ave_video_labels(annotations: AveAnnotations) -> np.ndarray:
    """float32 [N, C] one-hot video-level labels (equal to ``mil_labels.h5[:, :C]``)."""
    return np.eye(annotations.num_classes, dtype=np.float32)[annotations.classes]


def read_h5_array(path: PathLike, key: str = AVE_H5_KEY, what: str = "AVE file") -> np.ndarray:
    """Reads a whole (small) h5 dataset: labels and split orders."""
    handle, data = open_h5(path, key, what)
    with handle:
        return np.asarray(data[()])


def read_ave_order(path: PathLike, num_videos: int) -> np.ndarray:
    """int64 [n] row indices of one AVE split (key 'order'), checked against the row count."""
    order = read_h5_array(path, AVE_ORDER_KEY, "AVE split order").reshape(-1)
    integral_type = np.issubdtype(order.dtype, np.integer)
    if order.size and not integral_type and not np.all(order == np.round(order)):
        raise DataError(
            f"{path}: split order must hold integer row indices, got dtype {order.dtype}"
        )
    order = order.astype(np.int64)
    bad = np.flatnonzero((order < 0) | (order >= num_videos))
    if bad.size:
        raise DataError(
            f"{path}: row index {int(order[bad[0]])} (position {int(bad[0])}) is out of range: "
            f"the annotations have {num_videos} videos"
        )
    if len(np.unique(order)) != len(order):
        raise DataError(f"{path}: split order lists a row more than once")
    return order
