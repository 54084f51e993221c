"""Readers for the annotation files users have on disk, under one import path.

Each format has its module; this one gathers their public names, so that
``from avloc_jax.data import annotations as ann`` reaches every reader:

* `annotation_common`: `DataError` (what every reader raises, naming the file, the row or
  video, and what was expected), file and string helpers, snippet <-> segment conversion;
* `ave_annotations`: AVE's ``Annotations.txt`` and h5 files;
* `wtalc_annotations`: the W-TALC folders of ActivityNet1.2 and THUMOS14, their layouts,
  and their ActivityNet-format ground truth;
* `activitynet_json`: ActivityNet-format ground truth (``read_ground_truth_json``: the
  strict reader of users' ``gt.json``) and predictions.
"""

from __future__ import annotations

from avloc_jax.data.activitynet_json import GroundTruthVideo
from avloc_jax.data.activitynet_json import read_ground_truth_videos as read_ground_truth_json
from avloc_jax.data.annotation_common import (
    DataError,
    PathLike,
    as_text,
    load_npy,
    open_h5,
    require_file,
    segments_from_snippet_labels,
    snippet_labels_from_segments,
)
from avloc_jax.data.ave_annotations import (
    AVE_H5_KEY,
    AVE_ORDER_KEY,
    AVE_SNIPPETS,
    AveAnnotations,
    ave_snippet_labels,
    ave_video_labels,
    read_ave_annotations,
    read_ave_order,
    read_h5_array,
)
from avloc_jax.data.wtalc_annotations import (
    LAYOUTS,
    WtalcAnnotations,
    WtalcLayout,
    check_unique_ids,
    get_layout,
    layout_rows,
    read_layout,
    read_wtalc_annotations,
    thumos14_detection_classes,
    write_ground_truth_json,
    wtalc_ground_truth,
    youtube_id,
)

__all__ = [
    "AVE_H5_KEY",
    "AVE_ORDER_KEY",
    "AVE_SNIPPETS",
    "LAYOUTS",
    "AveAnnotations",
    "DataError",
    "GroundTruthVideo",
    "PathLike",
    "WtalcAnnotations",
    "WtalcLayout",
    "as_text",
    "ave_snippet_labels",
    "ave_video_labels",
    "check_unique_ids",
    "get_layout",
    "layout_rows",
    "load_npy",
    "open_h5",
    "read_ave_annotations",
    "read_ave_order",
    "read_ground_truth_json",
    "read_h5_array",
    "read_layout",
    "read_wtalc_annotations",
    "require_file",
    "segments_from_snippet_labels",
    "snippet_labels_from_segments",
    "thumos14_detection_classes",
    "write_ground_truth_json",
    "wtalc_ground_truth",
    "youtube_id",
]
