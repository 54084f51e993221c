"""The builder shared by ActivityNet1.2 and THUMOS14 in the W-TALC layout.

Inputs:
* annotations: the W-TALC annotation folder (classlist.npy, subset.npy, videoname.npy,
  url.npy, duration.npy, segments.npy, labels.npy, labels_all.npy);
* visual: the W-TALC feature file ``<Prefix>-I3D-JOINTFeatures.npy`` (a pickled object
  array of [T_i, 2048], aligned with the annotation rows) or a folder of
  ``<video_id>.npy``;
* audio: an aligned object .npy or a folder of ``<video_id>.npy``; resampled linearly
  onto the visual snippets when the counts differ.

One example per video of the layout's subsets (file order). Untrimmed videos get their
per-snippet labels from the segments with t_sec = index * duration / T.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from avloc_jax.data import annotations as ann
from avloc_jax.data.annotations import DataError
from avloc_jax.data.records import TASK_DETECTION, DatasetMetadata
from tfds_builders import common


class WtalcBuilder(common.AvlocBuilder, skip_registration=True):
    """Untrimmed videos with detection labels; subclasses set LAYOUT."""

    LAYOUT: ann.WtalcLayout
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="default")]

    def _split_generators(self, dl_manager) -> dict[str, Any]:
        layout = self.LAYOUT
        paths = self._inputs(dl_manager)
        annotations = ann.read_layout(paths["annotations"], layout)
        rows = {subset: ann.layout_rows(annotations, layout, subset) for subset in layout.subsets}
        for subset_rows in rows.values():
            ann.check_unique_ids(annotations, subset_rows)
        visual = common.open_store(paths["visual"], len(annotations), "visual")
        audio = common.open_store(paths["audio"], len(annotations), "audio")

        train, test = layout.subsets
        # The test labels of both benchmarks are not public / not for model selection, so
        # the held-out part of the training subset is the validation split (see docs/data.md).
        meta = DatasetMetadata(
            name=self.name,
            task=TASK_DETECTION,
            class_names=annotations.class_names,
            visual_dim=0,  # set from the first video below
            audio_dim=0,
            # Stored names; "" = held out of train at load time (avloc_jax.data.datasets).
            train_split=train,
            val_split="",
            test_split=test,
            tiou_thresholds=layout.tiou_thresholds,
        )
        self._set_metadata(
            meta, common.split_roles_json(train, None, test, self._heldout_fraction), paths
        )
        dims = common.DimTracker()
        return {
            subset: common.generate_with_counts(
                self,
                subset,
                self._generate_examples(subset, rows[subset], annotations, visual, audio, dims),
            )
            for subset in layout.subsets
        }

    def _generate_examples(
        self,
        subset: str,
        rows: np.ndarray,
        annotations: ann.WtalcAnnotations,
        visual: common.FeatureStore,
        audio: common.FeatureStore,
        dims: common.DimTracker,
    ) -> Iterator[tuple[str, dict]]:
        num_classes = len(annotations.class_names)
        for row in rows.tolist():
            vid = annotations.video_ids[row]
            raw = {}
            for what, store in (("visual", visual), ("audio", audio)):
                raw[what] = store.get(row, vid)
                if raw[what] is None:
                    if self._skip_missing:
                        break
                    raise DataError(
                        f"{store.description}: no {what} features for row {row} (video {vid}); "
                        "expected "
                        f"{[str(p) for p in store.candidates(vid)]}"
                    )
            if raw.get("visual") is None or raw.get("audio") is None:
                self._note_skipped(subset, vid)
                continue
            stores = {"visual": visual, "audio": audio}
            v, a = self.video_features(raw, stores, dims, f"row {row} (video {vid})")
            classes = annotations.segment_classes(row)
            duration = float(annotations.durations[row])
            segments = annotations.segments[row]
            yield (
                vid,
                common.make_example(
                    video_id=vid,
                    visual=v,
                    audio=a,
                    labels=annotations.video_labels(row),
                    duration=duration,
                    segments=segments,
                    segment_labels=classes,
                    snippet_labels=ann.snippet_labels_from_segments(
                        segments, classes, duration, len(v), num_classes
                    ),
                ),
            )
