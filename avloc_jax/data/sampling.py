"""Training-time snippet sampling: the one index rule of both training pipelines.

A training video of `length` valid snippets is cut to L = `num_snippets` snippets kept in
temporal order. The rule turns uniform random numbers into indices:

    scores [length] ~ U[0, 1) i.i.d. (random);  u ~ U[0, 1) (uniform, crop); float32

    length <= L  every snippet, 0 .. length-1, whatever the mode
    random       the L valid positions with the smallest scores, sorted
                 (every L-subset equally likely)
    uniform      cell k = [lo_k, lo_{k+1}), lo_k = floor(k · length / L), k = 0 .. L-1;
                 index lo_k + floor(u · (lo_{k+1} − lo_k)): one snippet in each of L
                 near-equal cells, uniform inside it, at the same relative place in every
                 cell (a systematic sample)
    crop         start + k, start = floor(u · (length − L + 1))
                 (a contiguous window, W-TALC's training crop; every start equally likely)

Cell bounds are integer arithmetic and the one float product is float32 in both (u and the
scores must be float32), so numpy and XLA compute the same indices bit for bit; float64
would differ at cell edges (u = float32(5/6) times a width of 6 is 5 in float32, 4.99…
in float64). `snippet_indices` is that rule written once against an array namespace `xp`,
and `sample_snippets` (indices, gathered features, mask: the training example's snippet
part) is built on it. Both pipelines call `sample_snippets`: the host pipeline
(`input_pipeline`, grain) with numpy per video, the device-resident pipeline
(`device_data`, inside jit) with jax.numpy, vmapped over the batch. What differs between
them is only where the uniform numbers come from (a numpy Generator, `host_uniforms`, or
jax.random), and which numbers a mode takes is `UNIFORMS`, here. Both cut videos to
`train_length`. tests/test_sampling.py checks that both return the same indices from the
same random numbers, and that their index distributions agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

SAMPLING_MODES = ("random", "uniform", "crop")

# The U[0, 1) float32 numbers a mode takes for one video (`snippet_indices`' keyword
# arguments): "scores", one per snippet position; "offset", one scalar.
UNIFORMS = {"random": "scores", "uniform": "offset", "crop": "offset"}


def check_mode(sampling: str) -> None:
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")


def snippet_indices(
    xp: ModuleType,
    length: Any,
    num_snippets: int,
    sampling: str,
    *,
    scores: Any = None,
    offset: Any = None,
) -> Any:
    """Integer [num_snippets] snippet indices of one video (see the module docstring).

    Args:
      xp: the array namespace, `numpy` or `jax.numpy` (traceable under jit and vmap).
      length: the video's valid snippet count (a Python int, or a traced scalar), >= 1.
      num_snippets: L, static.
      sampling: one of SAMPLING_MODES.
      scores: float32 [M] U[0, 1) with M >= max(length, L), for "random" (entries past
        `length` are ignored).
      offset: float32 scalar U[0, 1), for "uniform" and "crop" (float32, not a Python
        float: the product must round as it does on the device).
    Returns:
      int32 [L], non-decreasing and within [0, length-1]. The first min(length, L)
      entries are the sampled snippets, strictly increasing; entries past `length` (when
      length < L) repeat length-1 and are padding for the caller to mask.
    """
    check_mode(sampling)
    k = xp.arange(num_snippets)
    if sampling == "random":
        positions = xp.arange(scores.shape[-1])
        # Padding ranks after every valid snippet, in order, so a video no longer than L
        # keeps all of its snippets. A stable sort breaks float32 ties the same way in both
        # namespaces.
        ranked = xp.where(positions < length, scores, 2.0 + positions)
        keep = xp.sort(xp.argsort(ranked, stable=True)[:num_snippets])
    elif sampling == "uniform":
        low = (k * length) // num_snippets
        width = ((k + 1) * length) // num_snippets - low
        # u < 1 and width < 2^24, so the float32 product u · width stays below width: the
        # index never leaves its cell.
        keep = low + xp.floor(offset * width.astype(xp.float32))
        keep = xp.where(length < num_snippets, k, keep)  # short: cells of width 0 or 1
    else:  # crop
        starts = xp.maximum(length - num_snippets, 0) + 1
        keep = xp.floor(offset * xp.asarray(starts, xp.float32)) + k  # start < starts, as above
    # Entries past a short video's length repeat its last snippet (padding, masked later).
    return xp.minimum(keep, length - 1).astype(xp.int32)


def train_length(num_snippets: int, longest: int) -> int:
    """L, the one snippet count of every sampled training video: `num_snippets`, or the
    longest video when every video is shorter (AVE: 10). One L per split keeps every
    batch, on every process and device, one shape."""
    return int(min(num_snippets, longest))


def uniform_shapes(sampling: str, num_positions: int) -> dict[str, tuple[int, ...]]:
    """{name: shape} of the uniform numbers `sampling` takes for one video of
    `num_positions` snippet positions (its length on the host, the padded length on the
    device)."""
    check_mode(sampling)
    name = UNIFORMS[sampling]
    return {name: (num_positions,) if name == "scores" else ()}


def host_uniforms(
    length: int, num_snippets: int, sampling: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The host pipeline's uniform numbers for one video of `length` snippets, drawn
    with `rng` (float32). A video no longer than `num_snippets` keeps every snippet
    whatever the numbers, so nothing is drawn for it (zeros stand in)."""
    if length <= num_snippets:
        return {
            name: np.zeros(shape, np.float32)
            for name, shape in uniform_shapes(sampling, num_snippets).items()
        }
    return {
        name: rng.random(shape, dtype=np.float32)
        for name, shape in uniform_shapes(sampling, length).items()
    }


def sample_snippets(
    xp: ModuleType,
    features: Mapping[str, Any],
    length: Any,
    num_snippets: int,
    sampling: str,
    uniforms: Mapping[str, Any],
) -> dict[str, Any]:
    """One training video cut to L = `num_snippets` snippets: the example's snippet part.

    Args:
      xp: `numpy` or `jax.numpy` (traceable under jit and vmap).
      features: {name: [T, ...]} per-snippet arrays with T >= `length` rows (rows past
        `length` are padding, as in device-resident data).
      length: the valid snippet count (a Python int or a traced scalar), >= 1.
      num_snippets: L, static.
      sampling: one of SAMPLING_MODES.
      uniforms: the mode's numbers (`uniform_shapes`), from `host_uniforms` or jax.random.
    Returns:
      {name: float32 [L, ...]} the features at the sampled snippets, zero past a short
      video's end, and "mask": bool [L], True for the min(length, L) sampled snippets.
    """
    keep = snippet_indices(xp, length, num_snippets, sampling, **uniforms)
    mask = xp.arange(num_snippets) < xp.minimum(length, num_snippets)
    sampled = {}
    for name, values in features.items():
        # Gather, then convert: only the L kept rows become float32, not the whole video.
        rows = xp.asarray(xp.asarray(values)[keep], xp.float32)
        row_mask = mask.reshape(mask.shape + (1,) * (rows.ndim - 1))
        sampled[name] = xp.where(row_mask, rows, xp.zeros((), xp.float32))
    sampled["mask"] = mask
    return sampled


def sample_indices(
    length: int, num_snippets: int, sampling: str, rng: np.random.Generator
) -> np.ndarray:
    """int64 [min(length, num_snippets)] increasing snippet indices of a video of `length`,
    drawn with `rng`: the indices at which `sample_snippets` gathers on the host, for a
    caller that wants only the indices (the property tests of the rule use it). A video no
    longer than `num_snippets` keeps every snippet and draws nothing."""
    uniforms = host_uniforms(length, num_snippets, sampling, rng)
    keep = snippet_indices(np, length, num_snippets, sampling, **uniforms)
    return keep[: min(length, num_snippets)].astype(np.int64)
