"""ActivityNet1.2 (W-TALC layout) as a TFDS dataset.

Manual dir (or explicit paths): ``ActivityNet1.2-I3D-JOINTFeatures.npy`` (or a folder
``visual/`` of ``<youtube_id>.npy``), ``ActivityNet1.2-Annotations/``, and audio as
``audio/`` (``<youtube_id>.npy``) or an aligned object array ``ActivityNet1.2-audio.npy``.

Splits: ``training`` (4819 videos) and ``validation`` (2383). The test labels are not
public, so papers report on ``validation``: it plays the test role, and the loader holds
out a deterministic 10% of ``training`` as the validation split for model selection.
Video ids are YouTube ids (from url.npy). 100 classes, tIoU 0.5:0.05:0.95.
"""

from __future__ import annotations

from avloc_jax.data import annotations as ann
from tfds_builders import wtalc


class Activitynet12(wtalc.WtalcBuilder):
    """ActivityNet1.2: 100 classes, untrimmed videos, I3D features + user audio."""

    name = "activitynet12"
    DESCRIPTION = __doc__
    LAYOUT = ann.LAYOUTS["activitynet12"]
    INPUTS = {
        "annotations": ("ActivityNet1.2-Annotations", "annotations"),
        "visual": ("ActivityNet1.2-I3D-JOINTFeatures.npy", "visual"),
        "audio": ("audio", "ActivityNet1.2-audio.npy"),
    }
