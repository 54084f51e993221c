"""Figures of a trained model: per-video CAS / reliability / segments, the cross-attention
map, and training curves. Headless: matplotlib's Agg canvas is used directly (no pyplot,
so no GUI backend and no global figure state).

Every figure has a fixed size in pixels (`FIGSIZE` x `DPI`; no tight bounding box), so
outputs are comparable across videos and testable.

Shapes: T = snippets of a video, C = classes, H = attention heads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from avloc_jax.common import io

DPI = 100
VIDEO_FIGSIZE = (11.0, 7.0)  # 1100 x 700 px
ATTENTION_FIGSIZE = (11.0, 5.0)  # 1100 x 500 px
CURVES_FIGSIZE = (11.0, 7.0)  # 1100 x 700 px
MAX_DETECTION_ROWS = 8

Detection = tuple[int, float, float, float]  # (class index, score, start s, end s)


def figure_pixels(figsize: tuple[float, float]) -> tuple[int, int]:
    """(width, height) in pixels of a saved figure of `figsize` inches."""
    return int(round(figsize[0] * DPI)), int(round(figsize[1] * DPI))


def _new_figure(figsize: tuple[float, float]) -> Figure:
    figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a figure file is there whole or not at all.
    return io.atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=DPI, format="png"))


def _class_colors(num_classes: int) -> list[tuple[float, float, float, float]]:
    """One distinct colour per class (tab10, then tab20 for more classes)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if num_classes <= 10 else "tab20"]
    return [to_rgba(cmap(i % cmap.N)) for i in range(num_classes)]


def top_classes(video_scores: np.ndarray, extra: Sequence[int] = (), k: int = 3) -> list[int]:
    """The `extra` classes (e.g. ground truth) first, then the top-scoring ones, up to
    max(k, len(extra)) classes."""
    chosen = list(dict.fromkeys(int(c) for c in extra))
    for c in np.argsort(-np.asarray(video_scores)):
        if len(chosen) >= max(k, len(set(extra))):
            break
        if int(c) not in chosen:
            chosen.append(int(c))
    return chosen


def plot_video(path: Path | str, **kwargs: Any) -> Path:
    """`video_figure(**kwargs)` saved as a PNG at `path`."""
    return _save(video_figure(**kwargs), path)


def video_figure(
    *,
    video_id: str,
    duration: float,
    posterior: np.ndarray,
    reliability: np.ndarray,
    video_scores: np.ndarray,
    class_names: Sequence[str],
    detections: Sequence[Detection],
    ground_truth: Sequence[tuple[int, float, float]] | None = None,
    reliability_threshold: float = 0.5,
    num_top_classes: int = 3,
    snippet_seconds: float | None = None,
) -> Figure:
    """One video's figure: the CAS, μ_t and the segments, over [0, duration] seconds.

    Args:
      duration: the video's real length in seconds (the title's, and the time axis's end).
      snippet_seconds: snippet t covers [t, t+1) x snippet_seconds (e.g. 0.64 s for
        16-frame snippets at 25 fps, whose T snippets may end short of the video's end);
        default duration / T.
      posterior: [T, C+1] open-set posterior p_t (background last).
      reliability: [T] μ_t.
      video_scores: [C].
      detections: [(class, score, start s, end s)], as `localization.localize` returns.
      ground_truth: [(class, start s, end s)]; None when unknown (new videos).
    """
    posterior, reliability = np.asarray(posterior), np.asarray(reliability)
    length = len(reliability)
    num_classes = len(class_names)
    snippet = snippet_seconds if snippet_seconds else duration / max(length, 1)
    times = (np.arange(length) + 0.5) * snippet  # snippet centres, seconds
    colors = _class_colors(num_classes)
    gt = list(ground_truth or [])
    # Ground-truth classes and the best detection's class always get a CAS curve.
    best = [max(detections, key=lambda d: d[1])[0]] if detections else []
    classes = top_classes(video_scores, [c for c, _, _ in gt] + best, num_top_classes)

    figure = _new_figure(VIDEO_FIGSIZE)
    axes = figure.subplots(3, 1, sharex=True, height_ratios=[3, 1.6, 2.4])
    title = f"{video_id}  ({duration:.1f} s, {length} snippets)"
    if gt:
        title += "  ground truth: " + ", ".join(sorted({class_names[c] for c, _, _ in gt}))
    figure.suptitle(title, fontsize=11)

    # Ground-truth spans shaded behind the curves, to read the CAS and μ against them.
    for ax in axes[:2]:
        for c, start, end in gt:
            ax.axvspan(start, end, color=colors[c], alpha=0.12, lw=0)

    # CAS: p_t(c) = μ_t softmax(z_t)_c of the classes worth looking at.
    ax = axes[0]
    for c in classes:
        ax.plot(
            times,
            posterior[:, c],
            color=colors[c],
            lw=1.6,
            label=f"{class_names[c]} (video score {video_scores[c]:.2f})",
        )
    ax.set_ylabel("CAS  $p_t(c)$")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.3)

    # Foreground reliability μ_t and the AVE gate.
    ax = axes[1]
    ax.fill_between(times, reliability, color="0.55", alpha=0.35, step="mid")
    ax.plot(times, reliability, color="0.2", lw=1.2, drawstyle="steps-mid", label=r"$\mu_t$")
    ax.axhline(
        reliability_threshold,
        color="tab:red",
        ls="--",
        lw=0.9,
        label=f"θ = {reliability_threshold:g}",
    )
    ax.set_ylabel(r"reliability $\mu_t$")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.3)

    # Segments: ground truth on the top row, the highest-scoring detections below it.
    ax = axes[2]
    shown = sorted(detections, key=lambda d: -d[1])[:MAX_DETECTION_ROWS]
    rows = ["ground truth"] + [f"pred {i + 1}" for i in range(len(shown))]
    for c, start, end in gt:
        ax.broken_barh(
            [(start, end - start)], (-0.4, 0.8), facecolors=colors[c], edgecolors="k", lw=0.5
        )
        ax.text(
            0.5 * (start + end),
            0,
            class_names[c],
            ha="center",
            va="center",
            fontsize=7,
            color="w",
            clip_on=True,
        )
    if not gt:
        ax.text(
            0.5 * duration,
            0,
            "(no ground truth)",
            ha="center",
            va="center",
            fontsize=8,
            color="0.4",
        )
    for row, (c, score, start, end) in enumerate(shown, start=1):
        face = colors[c][:3] + (0.25 + 0.75 * float(np.clip(score, 0, 1)),)
        ax.broken_barh(
            [(start, end - start)], (row - 0.4, 0.8), facecolors=face, edgecolors="k", lw=0.5
        )
        # The score label right of the bar, or inside its end when that is near the end.
        label_room = 0.15 * duration
        right = min(end, duration) + 0.005 * duration
        ax.text(
            right if right + label_room <= duration else min(end, duration) - 0.005 * duration,
            row,
            f"{class_names[c]} {score:.2f}",
            va="center",
            ha="left" if right + label_room <= duration else "right",
            fontsize=7,
            clip_on=True,
        )
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, duration)  # the video, no further (sharex: every panel)
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", alpha=0.3)
    return figure


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def plot_attention(
    path: Path | str,
    *,
    video_id: str,
    duration: float,
    logits: np.ndarray,
    stage: int,
    ground_truth: Sequence[tuple[int, float, float]] | None = None,
    snippet_seconds: float | None = None,
) -> Path:
    """The cross-attention weights of one stage, averaged over heads.

    Args:
      duration, snippet_seconds: as `video_figure`; the map spans the T snippets.
      logits: Λ [H, T, T], rows = audio snippet τ, columns = visual snippet t (masked
        pairs hold a large negative value, i.e. weight 0 after the softmax).

    Left: visually-aware audio, for each visual snippet t the weights over audio snippets
    τ (softmax over τ). Right: audio-aware visual, for each audio snippet t the weights
    over visual snippets τ (softmax over τ).
    """
    logits = np.asarray(logits, np.float64)
    audio_weights = _softmax(logits, axis=1).mean(axis=0)  # [τ_audio, t_visual]
    visual_weights = _softmax(logits, axis=2).mean(axis=0)  # [t_audio, τ_visual]
    span = snippet_seconds * logits.shape[-1] if snippet_seconds else duration
    extent = (0.0, span, span, 0.0)
    figure = _new_figure(ATTENTION_FIGSIZE)
    axes = figure.subplots(1, 2)
    figure.suptitle(
        f"{video_id}: cross-attention of stage {stage} (mean over {logits.shape[0]} head(s))",
        fontsize=11,
    )
    panels = (
        (audio_weights.T, "visually-aware audio", "visual snippet t (s)", "audio snippet τ (s)"),
        (visual_weights, "audio-aware visual", "audio snippet t (s)", "visual snippet τ (s)"),
    )
    for ax, (weights, title, query, key) in zip(axes, panels):
        image = ax.imshow(
            weights, cmap="viridis", extent=extent, aspect="auto", interpolation="nearest"
        )
        ax.set_title(f"{title}: row = query, weights over τ", fontsize=9)
        ax.set_ylabel(query)
        ax.set_xlabel(key)
        for _, start, end in ground_truth or []:  # ground-truth spans as dashed guides
            for value in (start, end):
                ax.axvline(value, color="w", ls=":", lw=0.7)
                ax.axhline(value, color="w", ls=":", lw=0.7)
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    return _save(figure, path)


def plot_curves(
    path: Path | str, records: Sequence[Mapping[str, Any]], metric_name: str | None = None
) -> Path:
    """Training curves from metrics.jsonl records: loss terms, learning rate, the
    validation metric (the selection metric, best step marked), throughput.

    Args:
      records: `metric_logging.read_metrics(W)`.
      metric_name: the validation metric to plot; default: the first of
        average_mAP / accuracy present in the eval events.
    """
    train = [r for r in records if r.get("event") == "train"]
    evals = [r for r in records if r.get("event") == "eval"]
    if metric_name is None:
        metric_name = next(
            (m for m in ("average_mAP", "accuracy") if any(m in r for r in evals)), None
        )

    figure = _new_figure(CURVES_FIGSIZE)
    (ax_loss, ax_metric), (ax_lr, ax_speed) = figure.subplots(2, 2, sharex=True)
    steps = np.asarray([r["step"] for r in train])

    loss_keys = sorted(
        {k for r in train for k in r if k.startswith("loss/")}, key=lambda k: (k != "loss/total", k)
    )
    for key in loss_keys:
        values = np.asarray([_number(r.get(key)) for r in train], float)
        ax_loss.plot(
            steps, values, lw=2.0 if key == "loss/total" else 1.2, label=key.split("/", 1)[1]
        )
    if loss_keys:
        ax_loss.legend(fontsize=8, ncol=2)
    ax_loss.set_title("training losses", fontsize=10)
    ax_loss.grid(alpha=0.3)

    if metric_name and evals:
        eval_steps = [r["step"] for r in evals if metric_name in r]
        scores = [_number(r[metric_name]) for r in evals if metric_name in r]
        split = evals[0].get("split", "val")
        ax_metric.plot(eval_steps, scores, "o-", color="tab:green", label=f"{split} {metric_name}")
        if scores and np.isfinite(scores).any():
            best = int(np.nanargmax(scores))
            ax_metric.plot(
                [eval_steps[best]],
                [scores[best]],
                "*",
                ms=14,
                color="tab:red",
                label=f"best: {scores[best]:.4f} @ {eval_steps[best]}",
            )
        ax_metric.legend(fontsize=8)
    else:
        ax_metric.text(
            0.5,
            0.5,
            "no validation events yet",
            ha="center",
            va="center",
            transform=ax_metric.transAxes,
        )
    ax_metric.set_title("validation (model selection)", fontsize=10)
    ax_metric.grid(alpha=0.3)

    if any("learning_rate" in r for r in train):
        ax_lr.plot(steps, [_number(r.get("learning_rate")) for r in train], color="tab:purple")
    ax_lr.set_title("learning rate", fontsize=10)
    ax_lr.set_xlabel("step")
    ax_lr.grid(alpha=0.3)

    if any("steps_per_sec" in r for r in train):
        ax_speed.plot(steps, [_number(r.get("steps_per_sec")) for r in train], color="tab:orange")
    ax_speed.set_title("throughput (steps/s)", fontsize=10)
    ax_speed.set_xlabel("step")
    ax_speed.grid(alpha=0.3)
    return _save(figure, path)


def _number(value: Any) -> float:
    """metrics.jsonl numbers, with non-finite values stored as strings ('nan', 'inf')."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
