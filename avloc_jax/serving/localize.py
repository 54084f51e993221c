"""Video files (or their extracted features) in, localized actions out: `avloc localize`.

    result = localize(["a.mp4"], bundle="model/", extractor="weights/", out_dir="out/")
    result = localize(["features/"], bundle="model/", extractor=None, out_dir="out/")

1. features: `extraction.pipeline.extract_features` into OUT/features (cached there: a
   video that has not changed is not decoded again); the flow stream is run when the
   model's visual features are 2048-d (I3D RGB + flow), not when they are 1024-d. A
   folder that `avloc extract-features` wrote is read as it is (its manifest gives each
   video's duration and snippet grid);
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

from avloc_jax.data import activitynet_json
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


HOW_TO_GET_A_MODEL = (
    "a model trained on I3D + VGGish features: extract the features of labelled videos "
    "(`avloc extract-features`), build a dataset (`avloc build-data generic`), train it "
    "(`avloc train --config=configs/generic.py`) and export it (`avloc export`); "
    'README "Run on your own videos" and docs/extraction.md show each step'
)


def check_feature_sizes(loaded: inference.LoadedModel, visual: int, audio: int, what: str) -> None:
    """An `InputError` unless the model takes features of `visual` and `audio`
    dimensions; `what` says where those come from (the extractor, a features folder).
    Checked before any weights are loaded or any video is decoded."""
    meta = loaded.metadata
    if (meta.visual_dim, meta.audio_dim) != (visual, audio):
        raise inference.InputError(
            f"the model {loaded.source} was trained on the {meta.name!r} dataset, whose "
            f"features have {meta.visual_dim} visual and {meta.audio_dim} audio dimensions, "
            f"but {what} gives {visual} and {audio}. Localizing videos needs "
            f"{HOW_TO_GET_A_MODEL}"
        )


def extractor_sizes(flow: bool) -> tuple[int, int, str]:
    """(visual, audio dimension, description) of the converted networks that
    `pipeline.load_extractor` loads."""
    if flow:
        return 2 * pipeline.I3D_FEATURES, pipeline.VGGISH_FEATURES, "I3D RGB + flow with VGGish"
    return pipeline.I3D_FEATURES, pipeline.VGGISH_FEATURES, "I3D RGB with VGGish"


def features_folders(inputs: Sequence[Path | str]) -> bool:
    """True when every input is a folder written by `extract-features`, False when every
    input is a file; a ValueError for a mix, or a folder without a manifest."""
    folders = [Path(p) for p in inputs if Path(p).is_dir()]
    if not folders:
        return False
    if len(folders) != len(inputs):
        raise ValueError(
            f"give either video files or features folders, not both (folder {folders[0]} "
            "among video files)"
        )
    for folder in folders:
        if not pipeline.is_features_folder(folder):
            raise ValueError(
                f"{folder} is a folder without {pipeline.MANIFEST_FILE}; expected video files "
                "or a folder written by `avloc extract-features`"
            )
    return True


def localize(
    inputs: Sequence[Path | str],
    bundle: Path | str | inference.LoadedModel,
    extractor: Path | str | pipeline.FeatureExtractor | None,
    out_dir: Path | str,
    *,
    allow_missing_audio: bool = False,
    batch_size: int | None = None,
    progress: bool = True,
    notice: inference.Notice = inference.stderr_notice,
    top: int = TOP_DETECTIONS,
) -> LocalizeResult:
    """Extract (or reuse), predict, write predictions.json, the figures and the table.

    Args:
      inputs: video files, or folders that `avloc extract-features` wrote (their
        features are used as they are; no extractor is needed then).
      bundle: an exported bundle (`avloc export`), or a loaded model.
      extractor: the converted weights folder (`avloc convert-weights`), or an
        extractor; needed for video files only.
      allow_missing_audio: videos without an audio track use silence (with a warning).

    Raises `extraction.media.MediaError` for a bad video, `inference.InputError` for a
    model whose feature sizes videos cannot give, ValueError for mixed or unreadable
    inputs, FileNotFoundError for a missing bundle or weights folder. Nothing is written
    before every input has been checked.
    """
    out_dir = Path(out_dir)
    loaded = bundle if isinstance(bundle, inference.LoadedModel) else inference.load_bundle(bundle)
    flow = needs_flow(loaded)
    if features_folders(inputs):
        videos = [video for folder in inputs for video in pipeline.read_features_folder(folder)]
        for video in videos:
            visual, audio = video.entry["visual_shape"][1], video.entry["audio_shape"][1]
            what = f"video {video.video_id!r} of features folder {video.visual.parent.parent}"
            check_feature_sizes(loaded, visual, audio, what)
        if extractor is not None:
            notice("note: a features folder is used as it is; the extractor is not used")
        extraction = pipeline.ExtractionResult(
            videos, pipeline.ExtractionStats(cached=len(videos)), Path(inputs[0])
        )
    else:
        if extractor is None:
            raise ValueError(
                "video files need --extractor WEIGHTS_DIR (`avloc convert-weights`); "
                "features folders from `avloc extract-features` do not"
            )
        if not isinstance(extractor, pipeline.FeatureExtractor):
            check_feature_sizes(loaded, *extractor_sizes(flow))
            extractor = pipeline.load_extractor(
                extractor, flow=flow, batch_size=batch_size or pipeline.DEFAULT_BATCH_SIZE
            )
        what = f"the extractor ({'RGB + flow' if flow else 'RGB'})"
        check_feature_sizes(loaded, extractor.visual_dim(flow), extractor.audio_dim, what)
        extraction = pipeline.extract_features(
            inputs,
            out_dir / FEATURES_DIR,
            extractor,
            flow=flow,
            batch_size=batch_size,
            progress=progress,
            allow_missing_audio=allow_missing_audio,
            notice=notice,
        )
    snippet = align.snippet_seconds()
    if loaded.seconds_per_snippet and not math.isclose(loaded.seconds_per_snippet, snippet):
        notice(
            f"note: the model was trained on snippets of {loaded.seconds_per_snippet:g} s; "
            f"the extracted features have {snippet:g}-s snippets (16 frames at 25 fps)"
        )
    ids = [video.video_id for video in extraction.videos]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"video id {twice[0]!r} is in more than one features folder")
    records = []
    for video in extraction.videos:
        visual, audio = inference.prepare_inputs(video.visual, video.audio, loaded.metadata, notice)
        records.append({"visual": visual, "audio": audio})
    outputs = inference.predict_records(loaded, records, with_attention=loaded.has_cross_attention)
    durations = {v.video_id: v.duration for v in extraction.videos}
    per_video = {v.video_id: (out, v.grid_seconds) for v, out in zip(extraction.videos, outputs)}
    payload = inference.predictions_json(loaded, per_video)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = activitynet_json.write_predictions(out_dir / PREDICTIONS_FILE, payload)
    # The title and time axis show the real duration; the CAS is drawn on its 0.64-s grid.
    items = [
        figures.video_item(
            loaded,
            video.video_id,
            video.duration,
            dict(out),
            None,
            snippet_seconds=float(video.entry["seconds_per_snippet"]),
        )
        for video, out in zip(extraction.videos, outputs)
    ]
    written = figures.write_figures(loaded, items, out_dir, notice=notice)
    table = detection_table(payload, durations, top)
    return LocalizeResult(predictions, payload, written, table, extraction)


def detection_table(
    payload: Mapping[str, Any], durations: Mapping[str, float], top: int = TOP_DETECTIONS
) -> str:
    """The `top` highest-scoring detections of each video, as a plain-text table."""
    rows = [("video", "duration", "label", "start", "end", "score")]
    for video_id, detections in activitynet_json.predictions_by_video(payload).items():
        length = f"{durations.get(video_id, float('nan')):.1f} s"
        best = sorted(detections, key=lambda d: -d.score)[:top]
        if not best:
            rows.append((video_id, length, "(no detection)", "", "", ""))
        for i, d in enumerate(best):
            rows.append(
                (
                    video_id if i == 0 else "",
                    length if i == 0 else "",
                    d.label,
                    f"{d.start:.2f}",
                    f"{d.end:.2f}",
                    f"{d.score:.3f}",
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
