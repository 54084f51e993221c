"""THUMOS14 (W-TALC layout), 20-class temporal detection, as a TFDS dataset.

Manual dir (or explicit paths): ``Thumos14-I3D-JOINTFeatures.npy`` (or a folder ``visual/``
of ``<video_name>.npy``), ``Thumos14-Annotations/`` and audio as ``audio/``
(``<video_name>.npy``) or an aligned object array ``Thumos14-audio.npy``.

Only the videos with 20-class detection segments are kept (labels.npy/segments.npy hold
the 20 classes of classlist_20classes.npy): ``validation`` (200 in the W-TALC folder; the
training set by convention) and ``test`` (210). The loader holds out 10% of
``validation`` for model selection; ``test`` plays the test role. Video ids are the video
names (``video_test_0000004``). tIoU 0.1:0.1:0.7.
"""

from __future__ import annotations

from avloc_jax.data import annotations as ann
from tfds_builders import wtalc


class Thumos14(wtalc.WtalcBuilder):
    """THUMOS14: 20 detection classes, untrimmed videos."""

    name = "thumos14"
    DESCRIPTION = __doc__
    LAYOUT = ann.LAYOUTS["thumos14"]
    INPUTS = {
        "annotations": ("Thumos14-Annotations", "Thumos14reduced-Annotations", "annotations"),
        "visual": ("Thumos14-I3D-JOINTFeatures.npy", "visual"),
        "audio": ("audio", "Thumos14-audio.npy"),
    }
