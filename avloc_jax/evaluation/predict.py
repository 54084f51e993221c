"""The predict function: sharded, padded-and-masked inference, and its post-processing.

One jitted forward pass serves evaluation (engine), `avloc evaluate`, `avloc predict`,
`avloc plot` and `avloc export`: parameters are replicated, the batch is sharded over the
mesh, videos are padded to a length bucket and masked (`example_mask` marks the padding
rows of the last batch), so every video is scored exactly once whatever the batch size
and device count. Outputs come back per video, trimmed to the video's length T:

  ``video_scores`` [C]    softmax of the top-k pooled CAS,
  ``posterior``   [T, C+1] the open-set posterior p_t (background last),
  ``reliability`` [T]     μ_t,

and, on request (`EXTRA_OUTPUTS`):

  ``class_logits``     [T, C]  the per-snippet class logits z_t,
  ``attention_logits`` {stage: [H, T, T]} the cross-attention logits Λ of every stage
                       (rows = audio snippet τ, columns = visual snippet t), captured from
                       the model's sown ``intermediates``; empty for models without
                       cross-attention.

Post-processing of the outputs (localization and the ActivityNet prediction JSON) is
`localize_outputs` / `detections_json`, shared by evaluation and serving.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from avloc_jax.common import parallel, progress
from avloc_jax.data import input_pipeline
from avloc_jax.data.records import Record
from avloc_jax.evaluation import localization
from avloc_jax.model.scores import video_scores

VideoOutputs = dict[str, Any]  # the arrays above, NumPy; attention_logits is a dict

EXTRA_OUTPUTS = ("class_logits", "attention_logits")
_ATTENTION_PREFIX = "attention_logits_"  # the model sows Λ of stage s as attention_logits_{s}


def make_eval_step(
    model: Any,
    topk_ratio: float,
    mesh: jax.sharding.Mesh,
    *,
    extra_outputs: Sequence[str] = (),
    trace_count: list[int] | None = None,
) -> Callable:
    """A jitted forward pass: (params, global batch) -> replicated per-row outputs.

    Args:
      model: the flax model (`models.build_model`).
      topk_ratio: the share of snippets pooled into the video scores.
      mesh: params are replicated over it, the batch is sharded on its leading axis.
      extra_outputs: any of `EXTRA_OUTPUTS`, returned besides the standard outputs.
      trace_count: if given, `trace_count[0]` counts the traces, i.e. the compiled shapes.

    The batch holds visual [B, L, Dv], audio [B, L, Da], mask [B, L] and index [B]
    (-1 for padding rows); the outputs are batched ([B, ...], attention [B, H, L, L]).
    """
    unknown = set(extra_outputs) - set(EXTRA_OUTPUTS)
    if unknown:
        raise ValueError(f"unknown extra outputs {sorted(unknown)}; expected {EXTRA_OUTPUTS}")
    with_attention = "attention_logits" in extra_outputs

    def eval_step(params, batch):
        if trace_count is not None:
            trace_count[0] += 1  # runs at trace time only
        mask = batch["mask"].astype(bool)
        args = ({"params": params}, batch["visual"], batch["audio"], mask)
        if with_attention:
            outputs, state = model.apply(*args, train=False, mutable=["intermediates"])
        else:
            outputs, state = model.apply(*args, train=False), {}
        result = {
            "video_scores": video_scores(outputs["class_logits"], mask, topk_ratio),
            "posterior": outputs["posterior"],
            "reliability": outputs["reliability"],
            "index": batch["index"],
            "length": batch["mask"].sum(axis=1),
        }
        if "class_logits" in extra_outputs:
            result["class_logits"] = outputs["class_logits"]
        if with_attention:
            result["attention_logits"] = attention_logits(state.get("intermediates", {}))
        return result

    # Outputs are replicated so that every process can read every video's result
    # (metrics are then computed identically on all processes).
    return jax.jit(
        eval_step,
        in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
        out_shardings=parallel.replicated(mesh),
    )


def attention_logits(intermediates: Mapping[str, Any]) -> dict[int, jax.Array]:
    """stage -> Λ [B, H, T, T] from the sown 'intermediates' collection."""
    found: dict[int, jax.Array] = {}
    flat = jax.tree_util.tree_flatten_with_path(
        intermediates, is_leaf=lambda x: isinstance(x, tuple)
    )[0]
    for path, value in flat:
        name = str(getattr(path[-1], "key", path[-1]))
        if name.startswith(_ATTENTION_PREFIX):
            # sow appends to a tuple; the last value is this call's.
            found[int(name.rsplit("_", 1)[1])] = value[-1] if isinstance(value, tuple) else value
    return found


def multiple_buckets(lengths: Sequence[int], multiple: int) -> tuple[int, ...]:
    """Buckets that pad every video to the next multiple of `multiple` snippets, so that
    videos of similar lengths share one compilation. lengths [N] -> sorted buckets."""
    return tuple(sorted({int(math.ceil(int(t) / multiple) * multiple) for t in lengths}))


def _video_outputs(out: Mapping[str, Any], row: int, length: int) -> VideoOutputs:
    """Row `row` of a batch of outputs, trimmed to its `length` snippets."""
    video: VideoOutputs = {
        "video_scores": out["video_scores"][row],
        "posterior": out["posterior"][row, :length],
        "reliability": out["reliability"][row, :length],
    }
    if "class_logits" in out:
        video["class_logits"] = out["class_logits"][row, :length]
    if "attention_logits" in out:
        video["attention_logits"] = {
            stage: logits[row, :, :length, :length]
            for stage, logits in out["attention_logits"].items()
        }
    return video


def iterate_outputs(
    eval_step: Callable,
    params: Any,
    source: Sequence[Record],
    *,
    batch_size: int,
    buckets: Sequence[int] | None,
    mesh: jax.sharding.Mesh,
) -> Iterator[tuple[int, VideoOutputs]]:
    """Yields (dataset index, outputs) for every video of `source` exactly once.

    Records need visual [T, Dv], audio [T, Da] and labels [C]; `buckets` are the padded
    lengths (None: `input_pipeline.default_buckets` of the longest video).
    """
    parallel.local_batch_size(batch_size, "eval.batch_size")  # checks divisibility
    sharding = parallel.batch_sharded(mesh)
    for batch, indices in input_pipeline.eval_batches(
        source,
        batch_size=batch_size,  # global; each process gets its slice of every batch
        buckets=buckets or None,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    ):
        batch = {k: v for k, v in batch.items() if k in input_pipeline.EVAL_KEYS}
        batch["index"] = np.asarray(indices, np.int32)
        out = jax.device_get(eval_step(params, parallel.to_global(batch, sharding)))
        for row, index in enumerate(out["index"]):
            if index >= 0:  # -1: a padding row
                yield int(index), _video_outputs(out, row, int(out["length"][row]))


def collect_outputs(
    eval_step: Callable,
    params: Any,
    source: Sequence[Record],
    *,
    show_progress: bool = True,
    **kwargs: Any,
) -> dict[int, VideoOutputs]:
    """{dataset index: outputs} for every video of `source` (a progress bar on a TTY
    unless `show_progress` is False). kwargs: those of `iterate_outputs`."""
    outputs: dict[int, VideoOutputs] = {}
    enabled = None if show_progress and parallel.is_main_process() else False
    with progress.ProgressBar(
        len(source), desc="eval", unit="video", enabled=enabled, leave=False
    ) as bar:
        for index, video in iterate_outputs(eval_step, params, source, **kwargs):
            if index in outputs:
                raise RuntimeError(f"video index {index} was evaluated twice")
            outputs[index] = video
            bar.update(1)
    return outputs


# ----------------------------------------------------------------------------- post-processing


def localize_outputs(
    video: Mapping[str, Any], duration: float, num_classes: int, localization_config: Any
) -> list[localization.Detection]:
    """Detections [(class, score, start s, end s)] of one video's outputs.

    Args:
      video: posterior [T, C+1] (the background column is dropped) and video_scores [C].
      duration: the video's length in seconds.
    """
    return localization.localize(
        np.asarray(video["posterior"])[:, :num_classes],
        np.asarray(video["video_scores"]),
        float(duration),
        localization_config,
    )


def detections_json(
    videos: Mapping[str, tuple[Mapping[str, Any], float]],
    class_names: Sequence[str],
    localization_config: Any,
) -> dict:
    """The official ActivityNet prediction JSON of {video id: (outputs, duration s)}."""
    per_video = {
        video_id: localize_outputs(video, duration, len(class_names), localization_config)
        for video_id, (video, duration) in videos.items()
    }
    return localization.detections_to_json(per_video, class_names)
