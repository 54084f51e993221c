"""The figures of a set of videos: one per video, plus the attention map of the first.

`VideoItem` holds what a video's figure needs (the predict function's outputs, the
detections, the ground truth); `write_video_figures` draws them with `plotting`.

Shapes: T = snippets of a video, C = classes, H = attention heads.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avloc_jax.viz import plotting


@dataclasses.dataclass
class VideoItem:
    """What one video's figure needs."""

    video_id: str
    duration: float  # seconds
    # posterior [T, C+1], reliability [T], video_scores [C]; optionally
    # attention_logits {stage: [H, T, T]} (evaluation.predict outputs)
    outputs: dict[str, Any]
    detections: list[plotting.Detection]  # [(class, score, start s, end s)]
    ground_truth: list[tuple[int, float, float]] | None  # [(class, start s, end s)]; None: unknown
    # seconds per snippet where the T snippets do not span exactly `duration` (e.g. a
    # 0.64-s grid ending short of the video's end); None: duration / T
    snippet_seconds: float | None = None


def safe_name(text: str) -> str:
    """`text` as a file name: runs of other characters than [A-Za-z0-9._-] become '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120] or "video"


def has_attention(item: VideoItem) -> bool:
    return bool(item.outputs.get("attention_logits"))


def write_video_figures(
    items: Sequence[VideoItem],
    out_dir: Path,
    *,
    class_names: Sequence[str],
    reliability_threshold: float,
    prefix: str = "",
) -> list[Path]:
    """`out_dir/<prefix><video>.png` per item and, if the first item has attention logits,
    `out_dir/<prefix><video>_attention.png` of its last stage. Returns the paths written."""
    paths = []
    for index, item in enumerate(items):
        stem = safe_name(prefix + item.video_id)
        paths.append(
            plotting.plot_video(
                out_dir / f"{stem}.png",
                video_id=item.video_id,
                duration=item.duration,
                posterior=item.outputs["posterior"],
                reliability=item.outputs["reliability"],
                video_scores=item.outputs["video_scores"],
                class_names=class_names,
                detections=item.detections,
                ground_truth=item.ground_truth,
                reliability_threshold=reliability_threshold,
                snippet_seconds=item.snippet_seconds,
            )
        )
        if index == 0 and has_attention(item):
            attention = item.outputs["attention_logits"]
            stage = max(attention)
            paths.append(
                plotting.plot_attention(
                    out_dir / f"{stem}_attention.png",
                    video_id=item.video_id,
                    duration=item.duration,
                    logits=attention[stage],
                    stage=stage,
                    ground_truth=item.ground_truth,
                    snippet_seconds=item.snippet_seconds,
                )
            )
    return paths
