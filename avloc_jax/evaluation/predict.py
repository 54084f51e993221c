"""The predict function: sharded, padded-and-masked inference over a split.

Inference pads the last batch and masks it (`example_mask`), so every video is scored
exactly once whatever the batch size and device count. Outputs come back per video,
trimmed to the video's length:

  ``video_scores`` [C]    softmax of the top-k pooled CAS,
  ``posterior``   [T, C+1] the open-set posterior p_t (background last),
  ``reliability`` [T]     μ_t.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

from avloc_jax import losses
from avloc_jax.common import parallel, progress
from avloc_jax.data import input_pipeline
from avloc_jax.data.records import Record

VideoOutputs = dict[str, np.ndarray]


def make_eval_step(
    model: Any, topk_ratio: float, mesh: jax.sharding.Mesh, trace_count: list[int] | None = None
) -> Callable:
    """A jitted forward pass: (params, global batch) -> replicated per-video outputs.

    `trace_count[0]`, if given, counts the traces, i.e. the compiled shapes."""

    def eval_step(params, batch):
        if trace_count is not None:
            trace_count[0] += 1  # runs at trace time only
        outputs = model.apply(
            {"params": params}, batch["visual"], batch["audio"], batch["mask"], train=False
        )
        return {
            "video_scores": losses.video_scores(
                outputs["class_logits"], batch["mask"].astype(bool), topk_ratio
            ),
            "posterior": outputs["posterior"],
            "reliability": outputs["reliability"],
            "index": batch["index"],
            "length": batch["mask"].sum(axis=1),
        }

    # Outputs are replicated so that every process can read every video's result
    # (metrics are then computed identically on all processes).
    return jax.jit(
        eval_step,
        in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
        out_shardings=parallel.replicated(mesh),
    )


def iterate_outputs(
    eval_step: Callable,
    params: Any,
    source: Sequence[Record],
    *,
    batch_size: int,
    buckets: Sequence[int] | None,
    mesh: jax.sharding.Mesh,
) -> Iterator[tuple[int, VideoOutputs]]:
    """Yields (dataset index, outputs) for every video of `source` exactly once."""
    parallel.local_batch_size(batch_size, "eval.batch_size")  # checks divisibility
    sharding = parallel.batch_sharded(mesh)
    for batch, indices in input_pipeline.eval_batches(
        source,
        batch_size=batch_size,  # global; each process gets its slice of every batch
        buckets=buckets or None,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    ):
        batch = {
            k: v
            for k, v in batch.items()
            if k in ("visual", "audio", "mask", "labels", "example_mask")
        }
        batch["index"] = np.asarray(indices, np.int32)
        out = jax.device_get(eval_step(params, parallel.to_global(batch, sharding)))
        for row, index in enumerate(out["index"]):
            if index < 0:
                continue
            length = int(out["length"][row])
            yield (
                int(index),
                {
                    "video_scores": out["video_scores"][row],
                    "posterior": out["posterior"][row, :length],
                    "reliability": out["reliability"][row, :length],
                },
            )


def collect_outputs(
    eval_step: Callable, params: Any, source: Sequence[Record], **kwargs
) -> dict[int, VideoOutputs]:
    """{dataset index: outputs} for every video of `source` (a progress bar on a TTY)."""
    outputs: dict[int, VideoOutputs] = {}
    enabled = None if parallel.is_main_process() else False
    with progress.ProgressBar(
        len(source), desc="eval", unit="video", enabled=enabled, leave=False
    ) as bar:
        for index, video in iterate_outputs(eval_step, params, source, **kwargs):
            if index in outputs:
                raise RuntimeError(f"video index {index} was evaluated twice")
            outputs[index] = video
            bar.update(1)
    return outputs
