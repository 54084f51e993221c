"""Video files in, localized actions out: `avloc localize`.

    result = localize(["a.mp4"], bundle="model/", extractor="weights/", out_dir="out/")

1. features: `extraction.pipeline.extract_features` into OUT/features (cached there: a
   video that has not changed is not decoded again); the flow stream is run when the
   model's visual features are 2048-d (I3D RGB + flow), not when they are 1024-d;
2. prediction: the bundle's predict function on all the videos together
   (`inference.prepare_inputs` + `inference.predict_records`), then the official
   ActivityNet JSON (`inference.predictions_json`) with segments in seconds, written to
   OUT/predictions.json. Snippet k is [0.64 k, 0.64 (k + 1)) s exactly, so the CAS is
   mapped onto the T x 0.64 s the grid covers, not stretched over the true duration
   (which also holds the dropped tail shorter than one snippet);
3. figures: OUT/<video>.png per video (CAS, reliability μ_t, detected segments) and the
   cross-attention map of the first video (`serving.figures`);
4. a short table of the top detections per video (`detection_table`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from avloc_jax.common import io
from avloc_jax.extraction import align, pipeline
from avloc_jax.serving import figures, inference

FEATURES_DIR = "features"
PREDICTIONS_FILE = "predictions.json"
TOP_DETECTIONS = 3  # rows per video in the terminal table


@dataclasses.dataclass
class LocalizeResult:
    predictions: Path  # OUT/predictions.json
    payload: dict[str, Any]  # its content
    figures: list[Path]
    table: str
    extraction: pipeline.ExtractionResult


def needs_flow(loaded: inference.LoadedModel) -> bool:
    """Whether the model's visual features are I3D RGB + flow (2048-d) rather than RGB."""
    return loaded.metadata.visual_dim == 2 * pipeline.I3D_FEATURES


def check_extractor(
    loaded: inference.LoadedModel, extractor: pipeline.FeatureExtractor, flow: bool
) -> None:
    """An `InputError` unless the extractor's feature sizes are the model's."""
    visual, audio = extractor.visual_dim(flow), extractor.audio_dim
    meta = loaded.metadata
    if (visual, audio) != (meta.visual_dim, meta.audio_dim):
        raise inference.InputError(
            f"the model ({loaded.source}) takes visual features of size {meta.visual_dim} and "
            f"audio features of size {meta.audio_dim}, but the extractor gives {visual} and "
            f"{audio} ({'RGB + flow' if flow else 'RGB'} I3D, VGGish); expected a model "
            "trained on I3D (1024 RGB or 2048 RGB + flow) and VGGish (128) features"
        )


def localize(
    videos: Sequence[Path | str],
    bundle: Path | str | inference.LoadedModel,
    extractor: Path | str | pipeline.FeatureExtractor,
    out_dir: Path | str,
    *,
    allow_missing_audio: bool = False,
    batch_size: int | None = None,
    progress: bool = True,
    notice: inference.Notice = inference.stderr_notice,
    top: int = TOP_DETECTIONS,
) -> LocalizeResult:
    """Extract, predict, write predictions.json, the figures and the table (module doc).

    Args:
      bundle: an exported bundle (`avloc export`), or a loaded model.
      extractor: the converted weights folder (`avloc convert-weights`), or an extractor.
      allow_missing_audio: videos without an audio track use silence (with a warning).

    Raises `extraction.media.MediaError` for a bad video, `inference.InputError` for a
    model whose feature sizes the extractor cannot give, FileNotFoundError for a missing
    bundle or weights folder.
    """
    out_dir = Path(out_dir)
    loaded = bundle if isinstance(bundle, inference.LoadedModel) else inference.load_bundle(bundle)
    flow = needs_flow(loaded)
    if not isinstance(extractor, pipeline.FeatureExtractor):
        extractor = pipeline.load_extractor(
            extractor, flow=flow, batch_size=batch_size or pipeline.DEFAULT_BATCH_SIZE
        )
    check_extractor(loaded, extractor, flow)
    snippet = align.snippet_seconds()
    if loaded.seconds_per_snippet and not math.isclose(loaded.seconds_per_snippet, snippet):
        notice(
            f"note: the model was trained on snippets of {loaded.seconds_per_snippet:g} s; "
            f"the extracted features have {snippet:g}-s snippets (16 frames at 25 fps)"
        )

    extraction = pipeline.extract_features(
        videos,
        out_dir / FEATURES_DIR,
        extractor,
        flow=flow,
        batch_size=batch_size,
        progress=progress,
        allow_missing_audio=allow_missing_audio,
        notice=notice,
    )
    records = []
    for video in extraction.videos:
        visual, audio = inference.prepare_inputs(video.visual, video.audio, loaded.metadata, notice)
        records.append({"visual": visual, "audio": audio})
    outputs = inference.predict_records(loaded, records, with_attention=loaded.has_cross_attention)
    durations = {v.video_id: v.duration for v in extraction.videos}
    per_video = {v.video_id: (out, v.grid_seconds) for v, out in zip(extraction.videos, outputs)}
    payload = inference.predictions_json(loaded, per_video)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = io.atomic_write_json(out_dir / PREDICTIONS_FILE, payload)
    items = [
        figures.video_item(loaded, video_id, duration, dict(out), None)
        for video_id, (out, duration) in per_video.items()
    ]
    written = figures.write_figures(loaded, items, out_dir, notice=notice)
    table = detection_table(payload, durations, top)
    return LocalizeResult(predictions, payload, written, table, extraction)


def detection_table(
    payload: Mapping[str, Any], durations: Mapping[str, float], top: int = TOP_DETECTIONS
) -> str:
    """The `top` highest-scoring detections of each video, as a plain-text table."""
    rows = [("video", "duration", "label", "start", "end", "score")]
    for video_id, detections in payload["results"].items():
        length = f"{durations.get(video_id, float('nan')):.1f} s"
        best = sorted(detections, key=lambda d: -float(d["score"]))[:top]
        if not best:
            rows.append((video_id, length, "(no detection)", "", "", ""))
        for i, d in enumerate(best):
            start, end = d["segment"]
            rows.append(
                (
                    video_id if i == 0 else "",
                    length if i == 0 else "",
                    str(d["label"]),
                    f"{float(start):.2f}",
                    f"{float(end):.2f}",
                    f"{float(d['score']):.3f}",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = {1, 3, 4, 5}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
