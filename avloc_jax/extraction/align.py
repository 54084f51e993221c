"""The snippet grid, and VGGish audio embeddings put onto it.

Visual grid (I3D, as W-TALC): frames are resampled to 25 fps and cut into
non-overlapping 16-frame snippets. Snippet k covers frames [16k, 16k + 16), i.e.
[0.64 k, 0.64 (k + 1)) seconds. A video of N frames has T = floor(N / 16) snippets: the
tail of N mod 16 < 16 frames (< 0.64 s) is dropped, because I3D needs a whole 16-frame
input and padding it with repeated frames would invent motion (and RGB/flow would then
disagree on what the tail holds).

Audio grid (VGGish): non-overlapping 0.96-s examples; example j covers
[0.96 j, 0.96 (j + 1)) seconds of the 16 kHz waveform.

Alignment: the audio feature of snippet k is the average of the embeddings of the
examples that overlap it in time, each weighted by the length of the overlap (below,
`overlap_weights`). Since 0.64 s < 0.96 s a snippet overlaps one or two examples, and
the pattern repeats every 1.92 s (3 snippets, 2 examples). Worked example, a 3.0-s clip
at 25 fps (75 frames):

    T = floor(75 / 16) = 4 snippets, covering [0, 2.56) s (frames 64..74 dropped)
    examples needed: ceil(4 x 0.64 / 0.96) = ceil(2.67) = 3, covering [0, 2.88) s
    snippet 0 [0.00, 0.64)  <- e0 (0.64 s)                        = 1.0 e0
    snippet 1 [0.64, 1.28)  <- e0 (0.32 s) + e1 (0.32 s)          = 0.5 e0 + 0.5 e1
    snippet 2 [1.28, 1.92)  <- e1 (0.64 s)                        = 1.0 e1
    snippet 3 [1.92, 2.56)  <- e2 (0.64 s)                        = 1.0 e2

Why overlap weights and not `avloc_jax.data.records.resample_time` (linear interpolation
at snippet centres): `resample_time` assumes that both sequences span the same time,
which they do not here (T x 0.64 s of video against N_a x 0.96 s of audio), and linear
interpolation between neighbouring examples would leak an example into a snippet that it
does not overlap: with a sound that starts at 1.92 s (the start of e2 and of snippet 3),
interpolation at snippet 2's centre (1.60 s = example position 1.17) gives 0.17 e2, i.e.
sound 0.3 s before it starts, while the overlap weights give exactly e1.

The waveform is zero-padded (silence) to cover the whole visual grid, so that every
snippet overlaps a real example; a snippet beyond the last example (which can only happen
if the front end returns fewer examples than asked for) takes the last one.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

FPS = 25  # frames per second of the visual grid (W-TALC / I3D features)
SNIPPET_FRAMES = 16  # frames per I3D snippet
SAMPLE_RATE = 16000  # VGGish's audio rate
EXAMPLE_SECONDS = Fraction(96, 100)  # one VGGish example: 96 STFT frames of 10 ms
# VGGish's log-mel frames are 25-ms windows every 10 ms: n examples need
# 400 + 160 x (96 n - 1) samples at 16 kHz; we pad to 96 n x 160 + 400 (one more hop),
# which still frames into exactly n examples.
_STFT_WINDOW_SECONDS = Fraction(25, 1000)


def snippet_seconds(fps: int = FPS, snippet_frames: int = SNIPPET_FRAMES) -> float:
    """The length of one visual snippet: 16 / 25 = 0.64 s."""
    return snippet_frames / fps


def num_snippets(num_frames: int, snippet_frames: int = SNIPPET_FRAMES) -> int:
    """T = floor(N / 16): whole snippets only (the tail is dropped; see the module doc)."""
    return max(0, int(num_frames) // snippet_frames)


def snippet_bounds(
    num_snippets: int, fps: int = FPS, snippet_frames: int = SNIPPET_FRAMES
) -> np.ndarray:
    """[T, 2] float64 (start, end) seconds of each snippet: [0.64 k, 0.64 (k + 1))."""
    k = np.arange(num_snippets, dtype=np.float64)[:, None] + np.array([0.0, 1.0])
    return k * snippet_frames / fps


def examples_needed(
    num_snippets: int,
    fps: int = FPS,
    snippet_frames: int = SNIPPET_FRAMES,
    example_seconds: Fraction = EXAMPLE_SECONDS,
) -> int:
    """How many audio examples cover the visual grid: ceil(T x 0.64 / 0.96)."""
    span = Fraction(num_snippets * snippet_frames, fps)
    return max(1, math.ceil(span / example_seconds)) if num_snippets > 0 else 0


def padded_num_samples(
    num_examples: int,
    sample_rate: int = SAMPLE_RATE,
    example_seconds: Fraction = EXAMPLE_SECONDS,
) -> int:
    """Samples that frame into exactly `num_examples` VGGish examples (see above)."""
    example = example_seconds * sample_rate
    window = _STFT_WINDOW_SECONDS * sample_rate
    return int(num_examples * example + window)


def fit_waveform(
    samples: np.ndarray, num_snippets: int, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The waveform [S] zero-padded (silence) or cut so that it frames into exactly the
    examples that cover `num_snippets` snippets; float32 [S']."""
    samples = np.asarray(samples, np.float32).reshape(-1)
    length = padded_num_samples(examples_needed(num_snippets), sample_rate)
    if len(samples) >= length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - len(samples), np.float32)])


def overlap_weights(
    num_snippets: int,
    num_examples: int,
    fps: int = FPS,
    snippet_frames: int = SNIPPET_FRAMES,
    example_seconds: Fraction = EXAMPLE_SECONDS,
) -> np.ndarray:
    """[T, N_a] float64 weights, rows summing to 1: W[k, j] = |snippet k ∩ example j| /
    |snippet k ∩ (all examples)|; a snippet that overlaps no example takes the last one.

    The bounds are exact fractions (0.64 = 16/25, 0.96 = 24/25), so a sound that starts
    on a shared boundary (e.g. 1.92 s) is not smeared by rounding.
    """
    weights = np.zeros((num_snippets, max(num_examples, 0)), np.float64)
    if num_examples <= 0:
        return weights
    snippet = Fraction(snippet_frames, fps)
    for k in range(num_snippets):
        start, end = k * snippet, (k + 1) * snippet
        first = int(start // example_seconds)
        last = min(num_examples - 1, int(math.ceil(end / example_seconds)) - 1)
        for j in range(first, last + 1):
            overlap = min(end, (j + 1) * example_seconds) - max(start, j * example_seconds)
            if overlap > 0:
                weights[k, j] = float(overlap)
        total = weights[k].sum()
        if total > 0:
            weights[k] /= total
        else:  # beyond the last example
            weights[k, num_examples - 1] = 1.0
    return weights


def align_audio(embeddings: np.ndarray, num_snippets: int) -> np.ndarray:
    """VGGish embeddings [N_a, D] (example j = [0.96 j, 0.96 (j + 1)) s) -> float32
    [T, D] on the visual snippet grid, by overlap weights (see the module doc)."""
    embeddings = np.asarray(embeddings, np.float64)
    if embeddings.ndim != 2:
        raise ValueError(f"audio embeddings must be [examples, features], got {embeddings.shape}")
    if len(embeddings) == 0:
        raise ValueError("no audio examples to align (the waveform is shorter than 0.96 s)")
    weights = overlap_weights(num_snippets, len(embeddings))
    return (weights @ embeddings).astype(np.float32)
