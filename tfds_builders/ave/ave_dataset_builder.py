"""AVE (Audio-Visual Event localization, Tian et al. ECCV 2018) as a TFDS dataset.

Reads the files of github.com/YapengTian/AVE-ECCV18 (`data/`): every ``*.h5`` stores its
array under 'avadataset', the split files under 'order', and row i of each file is line i
of Annotations.txt.

* visual: ``visual_feature_vec.h5`` [N, 10, 512] or ``visual_feature.h5`` [N, 10, 7, 7, 512]
  (VGG19 pool5, mean-pooled over the 7x7 grid here, row by row);
* audio: ``audio_feature.h5`` [N, 10, 128] (VGGish);
* snippet labels: ``labels.h5`` [N, 10, 29] one-hot (28 = background) if present, else
  derived from Annotations.txt (the event covers [Start, End));
* splits: {train,val,test}_order.h5 (3339 / 402 / 402 rows).
* config 'weak': train also gets the 178 background-only videos of
  ``visual_feature_noisy.h5`` / ``audio_feature_noisy.h5`` (float64) / ``labels_noisy.h5``.

Each clip is 10 s with one snippet per second: duration 10, t_sec = index.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from avloc_jax.data import annotations as ann
from avloc_jax.data.annotations import DataError
from avloc_jax.data.records import TASK_AVE, DatasetMetadata
from tfds_builders import common

log = logging.getLogger("avloc.build")

SPLITS = ("train", "val", "test")


def _feature_dataset(path, what: str, num_rows: int | None):
    """(handle, h5 dataset) of a per-snippet feature file: [N, T, D] or [N, T, H, W, D]."""
    handle, data = ann.open_h5(path, ann.AVE_H5_KEY, f"AVE {what}")
    shape = list(data.shape)
    problem = None
    if len(shape) not in (3, 5):
        problem = f"{what} has shape {shape}; expected [N, T, D] or [N, T, H, W, D]"
    elif num_rows is not None and shape[0] != num_rows:
        problem = (
            f"{what} has {shape[0]} rows but Annotations.txt has {num_rows} videos (row i = line i)"
        )
    elif shape[1] != ann.AVE_SNIPPETS:
        problem = f"{what} has {shape[1]} snippets per video; expected {ann.AVE_SNIPPETS}"
    if problem is not None:
        handle.close()
        raise DataError(f"{path}: {problem}")
    return handle, data


def _row_features(data, row: int) -> np.ndarray:
    """One video's [T, D] features; the 7x7 grid is averaged (float64 accumulate)."""
    x = np.asarray(data[row])
    if x.ndim == 4:  # [T, H, W, D]: spatial mean pooling
        x = x.mean(axis=(1, 2), dtype=np.float64)
    return x


class _FeaturePair:
    """The visual and audio h5 feature files of one set of videos, open together.

    `row(i, where, dims)` reads video i from both and checks each (shape, finite values,
    the feature size seen so far); errors name the file and `where`."""

    def __init__(self, visual_path, audio_path, prefix: str, num_rows: int | None):
        self.paths = {"visual": visual_path, "audio": audio_path}
        self._stack = contextlib.ExitStack()
        self._data = {}
        for what, path in self.paths.items():
            handle, data = _feature_dataset(path, prefix + what, num_rows)
            self._stack.callback(handle.close)
            self._data[what] = data

    def __enter__(self) -> _FeaturePair:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def row(self, row: int, where: str, dims: common.DimTracker) -> tuple[np.ndarray, np.ndarray]:
        visual, audio = (
            common.check_features(
                _row_features(self._data[what], row),
                what=what,
                source=str(self.paths[what]),
                video=where,
                dim=getattr(dims, what),
            )
            for what in ("visual", "audio")
        )
        return visual, audio


class Ave(common.AvlocBuilder):
    """AVE: 4143 10-s clips, 28 event classes, per-second labels."""

    name = "ave"
    DESCRIPTION = __doc__
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="default", description="Supervised splits 3339/402/402."),
        tfds.core.BuilderConfig(
            name="weak", description="Weak setting: 178 background-only videos added to train."
        ),
    ]
    INPUTS = {
        "annotations": ("Annotations.txt",),
        "visual": ("visual_feature_vec.h5", "visual_feature.h5"),
        "audio": ("audio_feature.h5",),
        "labels": ("labels.h5",),
        "train_order": ("train_order.h5",),
        "val_order": ("val_order.h5",),
        "test_order": ("test_order.h5",),
        "noisy_visual": ("visual_feature_noisy_vec.h5", "visual_feature_noisy.h5"),
        "noisy_audio": ("audio_feature_noisy.h5",),
        "noisy_labels": ("labels_noisy.h5",),
    }

    @classmethod
    def input_names(cls, config_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        required = ("annotations", "visual", "audio", *(f"{split}_order" for split in SPLITS))
        if config_name == "weak":
            required += ("noisy_visual", "noisy_audio", "noisy_labels")
        return required, ("labels",)

    def _split_generators(self, dl_manager) -> dict[str, Any]:
        paths = self._inputs(dl_manager)
        weak = self.builder_config.name == "weak"

        annotations = ann.read_ave_annotations(paths["annotations"])
        n = len(annotations)
        snippet_labels = self._snippet_labels(annotations, paths["labels"])
        orders = {split: ann.read_ave_order(paths[f"{split}_order"], n) for split in SPLITS}

        with contextlib.ExitStack() as stack:
            dims = {}
            for name in ("visual", "audio"):
                handle, data = _feature_dataset(paths[name], name, n)
                stack.callback(handle.close)
                dims[name] = data.shape[-1]
        meta = DatasetMetadata(
            name=self.name,
            task=TASK_AVE,
            class_names=annotations.class_names,
            visual_dim=int(dims["visual"]),
            audio_dim=int(dims["audio"]),
            train_split="train",
            val_split="val",
            test_split="test",
        )
        self._set_metadata(
            meta,
            common.split_roles_json("train", "val", "test", 0.0),
            paths,
            labels_source="labels.h5" if paths["labels"] is not None else "Annotations.txt",
            weak_setting=weak,
        )
        return {
            split: common.generate_with_counts(
                self,
                split,
                self._generate_examples(
                    split=split,
                    order=orders[split],
                    annotations=annotations,
                    snippet_labels=snippet_labels,
                    paths=paths,
                    weak=weak and split == "train",
                ),
            )
            for split in SPLITS
        }

    def _snippet_labels(self, annotations: ann.AveAnnotations, labels_path) -> np.ndarray:
        """int32 [N, 10] with C = background, from labels.h5 if given else the annotations."""
        derived = ann.ave_snippet_labels(annotations)
        if labels_path is None:
            return derived
        onehot = ann.read_h5_array(labels_path, what="AVE labels.h5")
        expected = (len(annotations), ann.AVE_SNIPPETS, annotations.num_classes + 1)
        if onehot.shape != expected:
            raise DataError(
                f"{labels_path}: shape {list(onehot.shape)}; expected {list(expected)} "
                f"(videos, snippets, {annotations.num_classes} "
                f"class{'es' if annotations.num_classes != 1 else ''} + background)"
            )
        sums = onehot.sum(-1)
        if not np.allclose(sums, 1.0):
            row, t = np.argwhere(~np.isclose(sums, 1.0))[0]
            raise DataError(
                f"{labels_path}: row {row} (video {annotations.video_ids[row]}), snippet {t} is "
                "not one-hot "
                f"(sums to {sums[row, t]})"
            )
        labels = onehot.argmax(-1).astype(np.int32)
        disagree = np.flatnonzero((labels != derived).any(axis=1))
        if disagree.size:
            # labels.h5 is what the AVE code trains on, so it wins; say how often it differs.
            log.warning(
                "labels.h5 differs from Annotations.txt on %d videos (e.g. row %d)",
                disagree.size,
                disagree[0],
            )
        return labels

    def _generate_examples(
        self,
        *,
        split: str,
        order: np.ndarray,
        annotations: ann.AveAnnotations,
        snippet_labels: np.ndarray,
        paths: dict,
        weak: bool,
    ) -> Iterator[tuple[str, dict]]:
        n, bg = len(annotations), annotations.num_classes
        video_labels = ann.ave_video_labels(annotations)
        dims = common.DimTracker()
        with _FeaturePair(paths["visual"], paths["audio"], "", n) as features:
            for row in order.tolist():
                vid = annotations.video_ids[row]
                v, a = features.row(row, f"row {row} (video {vid})", dims)
                dims.visual, dims.audio = v.shape[1], a.shape[1]
                segments, segment_labels = ann.segments_from_snippet_labels(snippet_labels[row], bg)
                yield (
                    f"{row:05d}",
                    common.make_example(
                        video_id=vid,
                        visual=v,
                        audio=a,
                        labels=video_labels[row],
                        duration=float(ann.AVE_SNIPPETS),
                        segments=segments,
                        segment_labels=segment_labels,
                        snippet_labels=snippet_labels[row],
                    ),
                )
            if weak:
                yield from self._noisy_examples(paths, bg, dims)

    def _noisy_examples(
        self, paths: dict, bg: int, dims: common.DimTracker
    ) -> Iterator[tuple[str, dict]]:
        """The weak setting's background-only videos (audio stored as float64)."""
        labels = ann.read_h5_array(paths["noisy_labels"], what="AVE labels_noisy.h5")
        if labels.ndim == 3:  # per-snippet one-hot: reduce to video level
            labels = labels.max(axis=1)
        if labels.ndim != 2 or labels.shape[1] != bg + 1:
            raise DataError(
                f"{paths['noisy_labels']}: shape {list(labels.shape)}; expected [M, {bg + 1}]"
            )
        events = np.flatnonzero(labels[:, :bg].any(axis=1))
        if events.size:
            raise DataError(
                f"{paths['noisy_labels']}: row {events[0]} has an event label; expected "
                "background-only rows "
                f"(column {bg} set)"
            )
        m = labels.shape[0]
        with _FeaturePair(paths["noisy_visual"], paths["noisy_audio"], "noisy ", m) as features:
            for row in range(m):
                vid = f"noisy_{row:03d}"
                v, a = features.row(row, f"row {row} ({vid})", dims)
                yield (
                    f"noisy_{row:03d}",
                    common.make_example(
                        video_id=vid,
                        visual=v,
                        audio=a,
                        labels=np.zeros(bg, np.float32),
                        duration=float(ann.AVE_SNIPPETS),
                        segments=np.zeros((0, 2), np.float32),
                        segment_labels=np.zeros((0,), np.int32),
                        snippet_labels=np.full(ann.AVE_SNIPPETS, bg, np.int32),
                    ),
                )
