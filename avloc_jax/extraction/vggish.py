"""VGGish in Flax: the log-mel front end and the network of the AudioSet VGGish model.

Reference: tensorflow/models research/audioset/vggish (`vggish_input.py`,
`mel_features.py`, `vggish_slim.py`) as ported to PyTorch by the `torchvggish` package,
whose checkpoint (`vggish-10086976.pth`) and PCA file (`vggish_pca_params-970ea276.pth`)
`avloc convert-weights` reads. The tests compare both halves with goldens made by
torchvggish (`tools/make_vggish_goldens.py`).

Front end (numpy, float64 like the reference, float32 out):
  mono, 16 kHz -> STFT magnitude (periodic Hann of 400 samples = 25 ms, hop 160 = 10 ms,
  FFT 512) -> 64 HTK-mel bands 125-7500 Hz -> log(mel + 0.01) -> examples of 96 frames,
  hop 96 (0.96 s each, no overlap; an incomplete last example is dropped).

Resampling: the reference resamples with resampy (`kaiser_best`). Here an input not at
16 kHz goes through `scipy.signal.resample_poly` with a Kaiser-windowed filter close to
resampy's; the log-mel of a 44.1 kHz tone then differs from the reference by well under
the network's sensitivity but not to 1e-5 (the test bounds it). `avloc extract-features`
decodes straight to 16 kHz, so this path is for callers holding other rates.

Network: conv64-pool, conv128-pool, conv256x2-pool, conv512x2-pool (3x3 convolutions,
2x2 max pools, ReLU), then fully connected 4096-4096-128, each followed by a ReLU, as
torchvggish's `VGG` (which keeps the ReLU after the 128-d layer of the original 2017
release). The features are flattened in (height, width, channel) order: torchvggish
transposes NCHW to NHWC before flattening to keep the TensorFlow weights' order, and
NHWC is Flax's native layout, so a plain reshape reproduces it.

Which output: by default the raw 128-d embedding (`postprocess=False`). The AVE features
(Tian et al., ECCV 2018; the dataset of this project) were made by a script that reads
the `vggish/embedding` tensor of the TensorFlow model, i.e. before the PCA/whitening and
8-bit quantisation that AudioSet's released embeddings went through. `postprocess=True`
adds that step (torchvggish's `Postprocessor`): PCA with the released parameters, clip
to [-2, 2], quantise to integers 0..255 (returned as float32, not squeezed).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SAMPLE_RATE = 16000
STFT_WINDOW = 400  # samples: 25 ms at 16 kHz
STFT_HOP = 160  # samples: 10 ms
FFT_LENGTH = 512  # the next power of two above the window
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # STFT frames per example: 0.96 s
EXAMPLE_HOP_FRAMES = 96
EXAMPLE_SECONDS = EXAMPLE_FRAMES * STFT_HOP / SAMPLE_RATE  # 0.96
EMBEDDING_SIZE = 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0

# The reference's HTK mel scale: mel = 1127 ln(1 + f / 700).
_MEL_BREAK_HZ = 700.0
_MEL_HIGH_Q = 1127.0

# Frames per STFT chunk: bounds the float64 working set (~ chunk * 512 * 8 B * a few)
# on hour-long audio; the result does not depend on it.
_STFT_CHUNK_FRAMES = 4096


# ----------------------------------------------------------------------------- front end


def resample_to_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """samples [S] at `sample_rate` -> float64 [S'] at 16 kHz (unchanged if already 16 kHz).

    Polyphase resampling (`scipy.signal.resample_poly`) with a Kaiser-windowed sinc low-pass
    (beta 14.77, cutoff 0.9476 of the lower Nyquist: resampy's `kaiser_best` parameters).
    It is not resampy's interpolator, so the output differs from the reference slightly.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    x = np.asarray(samples, dtype=np.float64)
    if sample_rate == SAMPLE_RATE:
        return x
    from scipy import signal

    gcd = math.gcd(int(sample_rate), SAMPLE_RATE)
    up, down = SAMPLE_RATE // gcd, int(sample_rate) // gcd
    rate = max(up, down)
    half_taps = 64 * rate  # 64 zero crossings each side, as kaiser_best
    taps = signal.firwin(
        2 * half_taps + 1, 0.9475937167399596 / rate, window=("kaiser", 14.769656459379492)
    )
    return signal.resample_poly(x, up, down, window=taps)  # it scales by `up` itself


def periodic_hann(length: int) -> np.ndarray:
    """The "periodic" Hann window [length]: a full cosine period of `length` samples (the
    reference's choice; np.hanning is the symmetric one)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi / length * np.arange(length))


def hertz_to_mel(frequencies_hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return _MEL_HIGH_Q * np.log(1.0 + np.asarray(frequencies_hz, dtype=np.float64) / _MEL_BREAK_HZ)


@functools.lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """[257, 64] float64: post-multiplies STFT magnitude rows into mel bands.

    Triangles that are linear in mel between equally spaced mel edges over
    MEL_MIN_HZ..MEL_MAX_HZ (each band spans its neighbours' centres); the DC bin gets no
    weight, as in HTK."""
    num_bins = FFT_LENGTH // 2 + 1
    bins_mel = hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2.0, num_bins))[:, None]
    edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ), NUM_MEL_BINS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel - lower) / (centre - lower)
    falling = (upper - bins_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    weights.setflags(write=False)  # cached: shared by every caller
    return weights


def num_stft_frames(num_samples: int) -> int:
    """Complete 400-sample windows at hop 160 (no padding, as the reference)."""
    if num_samples < STFT_WINDOW:
        return 0
    return 1 + (num_samples - STFT_WINDOW) // STFT_HOP


def log_mel_spectrogram(samples_16k: np.ndarray) -> np.ndarray:
    """samples [S] at 16 kHz -> log mel spectrogram [F, 64] float64, F = num_stft_frames(S)."""
    x = np.ascontiguousarray(samples_16k, dtype=np.float64)
    num_frames = num_stft_frames(x.shape[0])
    out = np.empty((num_frames, NUM_MEL_BINS), dtype=np.float64)
    if num_frames == 0:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, STFT_WINDOW)[::STFT_HOP]
    window = periodic_hann(STFT_WINDOW)
    weights = mel_matrix()
    for start in range(0, num_frames, _STFT_CHUNK_FRAMES):
        chunk = windows[start : start + _STFT_CHUNK_FRAMES] * window
        magnitude = np.abs(np.fft.rfft(chunk, FFT_LENGTH))
        out[start : start + len(chunk)] = np.log(magnitude @ weights + LOG_OFFSET)
    return out


def frame_examples(log_mel: np.ndarray) -> np.ndarray:
    """log mel [F, 64] -> examples [N, 96, 64]: consecutive, non-overlapping 0.96 s patches;
    the frames after the last complete example are dropped (as the reference)."""
    count = (
        0
        if log_mel.shape[0] < EXAMPLE_FRAMES
        else 1 + ((log_mel.shape[0] - EXAMPLE_FRAMES) // EXAMPLE_HOP_FRAMES)
    )
    starts = np.arange(count) * EXAMPLE_HOP_FRAMES
    index = starts[:, None] + np.arange(EXAMPLE_FRAMES)[None, :]
    return log_mel[index].reshape(count, EXAMPLE_FRAMES, log_mel.shape[1])


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[S] or [S, C] (channels last, as the reference) -> [S]: the mean over channels."""
    x = np.asarray(samples)
    if x.ndim == 1:
        return x
    if x.ndim == 2:
        return x.mean(axis=1)
    raise ValueError(f"audio must be [samples] or [samples, channels], got shape {x.shape}")


def log_mel_examples(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """samples [S] (or [S, C]) float at `sample_rate` -> VGGish input examples
    [N, 96, 64] float32, N = floor((F - 96) / 96) + 1 for F STFT frames (0 if F < 96).

    Samples are expected in [-1, 1] (16-bit PCM / 32768) as in the reference; louder
    values are not clipped."""
    mono = to_mono(samples)
    log_mel = log_mel_spectrogram(resample_to_16k(mono, sample_rate))
    return frame_examples(log_mel).astype(np.float32)


def example_start_seconds(num_examples: int) -> np.ndarray:
    """[N] float64: where each example starts, in seconds from the first sample. Example i
    covers [0.96 i, 0.96 i + 0.96 + 0.015) of audio (its last STFT window reaches 15 ms
    past the nominal 0.96 s)."""
    return np.arange(num_examples) * EXAMPLE_SECONDS


# ----------------------------------------------------------------------------- network

# (Flax name, output channels, max-pool after it)
_CONVS: tuple[tuple[str, int, bool], ...] = (
    ("conv1", 64, True),
    ("conv2", 128, True),
    ("conv3_1", 256, False),
    ("conv3_2", 256, True),
    ("conv4_1", 512, False),
    ("conv4_2", 512, True),
)
_FCS: tuple[tuple[str, int], ...] = (("fc1_1", 4096), ("fc1_2", 4096), ("fc2", EMBEDDING_SIZE))

# torchvggish state-dict prefixes of the same layers (nn.Sequential indices; the ReLUs
# and pools in between hold no parameters).
_TORCH_CONV_INDEX = {
    "conv1": 0,
    "conv2": 3,
    "conv3_1": 6,
    "conv3_2": 8,
    "conv4_1": 11,
    "conv4_2": 13,
}
_TORCH_FC_INDEX = {"fc1_1": 0, "fc1_2": 2, "fc2": 4}


class PCAQuantize(nn.Module):
    """AudioSet's embedding postprocessing: PCA (with whitening) then 8-bit quantisation.

    [N, 128] -> [N, 128] float32 holding integers 0..255: round((clip(E (x - m), -2, 2) + 2)
    * 255 / 4), E = `pca_eigen_vectors` [128, 128] (rows are components), m = `pca_means`.
    The parameters are not learned: they come from the released PCA file (zeros at init).
    """

    precision: jax.lax.Precision | None = None

    @nn.compact
    def __call__(self, embeddings: jax.Array) -> jax.Array:
        size = embeddings.shape[-1]
        vectors = self.param("pca_eigen_vectors", nn.initializers.zeros, (size, size))
        means = self.param("pca_means", nn.initializers.zeros, (size,))
        projected = jnp.matmul(embeddings - means, vectors.T, precision=self.precision)
        clipped = jnp.clip(projected, QUANTIZE_MIN, QUANTIZE_MAX)
        # round half to even, as torch.round
        return jnp.round((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))


class VGGish(nn.Module):
    """VGGish: log-mel examples [N, 96, 64] (or [N, 96, 64, 1]) -> embeddings [N, 128].

    `postprocess=True` appends `PCAQuantize` (parameters under "pca"). `precision` is
    passed to every convolution and matmul: leave None on CPU; jax.lax.Precision.HIGHEST
    on accelerators whose default matmul precision is lower than float32.
    """

    postprocess: bool = False
    precision: jax.lax.Precision | None = None

    @nn.compact
    def __call__(self, examples: jax.Array) -> jax.Array:
        x = examples[..., None] if examples.ndim == 3 else examples
        if x.shape[1:] != (EXAMPLE_FRAMES, NUM_MEL_BINS, 1):
            raise ValueError(
                f"VGGish takes [N, {EXAMPLE_FRAMES}, {NUM_MEL_BINS}(, 1)], got {examples.shape}"
            )
        x = x.astype(jnp.float32)
        for name, features, pool in _CONVS:
            x = nn.Conv(
                features, (3, 3), padding=((1, 1), (1, 1)), precision=self.precision, name=name
            )(x)
            x = nn.relu(x)
            if pool:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        # [N, 6, 4, 512] flattened (h, w, c): torchvggish's order (see the module doc).
        x = x.reshape(x.shape[0], -1)
        for name, features in _FCS:
            x = nn.relu(nn.Dense(features, precision=self.precision, name=name)(x))
        if self.postprocess:
            x = PCAQuantize(precision=self.precision, name="pca")(x)
        return x


def vggish_template(postprocess: bool = False) -> dict[str, Any]:
    """The variables of `VGGish(postprocess)` as jax.ShapeDtypeStruct: nothing is allocated."""
    model = VGGish(postprocess=postprocess)
    dummy = jax.ShapeDtypeStruct((1, EXAMPLE_FRAMES, NUM_MEL_BINS), jnp.float32)
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), dummy)


def vggish_pca_template() -> dict[str, Any]:
    """The variables of the PCA checkpoint: {"params": {"pca": {...}}}."""
    return {"params": {"pca": vggish_template(postprocess=True)["params"]["pca"]}}


# ----------------------------------------------------------------------------- converter


def vggish_torch_to_flax(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """torchvggish `VGG` state dict -> `VGGish` variables {"params": ...}.

    Conv weights OIHW -> HWIO; linear weights [out, in] -> [in, out]. The flatten order
    needs no permutation of fc1_1 (see the module doc)."""
    params: dict[str, Any] = {}
    for name, index in _TORCH_CONV_INDEX.items():
        weight = np.asarray(state_dict[f"features.{index}.weight"])
        params[name] = {
            "kernel": weight.transpose(2, 3, 1, 0),
            "bias": np.asarray(state_dict[f"features.{index}.bias"]),
        }
    for name, index in _TORCH_FC_INDEX.items():
        params[name] = {
            "kernel": np.asarray(state_dict[f"embeddings.{index}.weight"]).T,
            "bias": np.asarray(state_dict[f"embeddings.{index}.bias"]),
        }
    return {"params": params}


def vggish_pca_torch_to_flax(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """torchvggish PCA file ({"pca_eigen_vectors": [128, 128], "pca_means": [128(, 1)]})
    -> {"params": {"pca": ...}}."""
    return {
        "params": {
            "pca": {
                "pca_eigen_vectors": np.asarray(state_dict["pca_eigen_vectors"]),
                "pca_means": np.asarray(state_dict["pca_means"]).reshape(-1),
            }
        }
    }


def load_vggish(
    weights_dir: str | Path, postprocess: bool = False
) -> tuple[VGGish, dict[str, Any]]:
    """(module, variables) from WEIGHTS_DIR/vggish/ (and WEIGHTS_DIR/vggish_pca/ when
    `postprocess`), as written by `avloc convert-weights`; use `module.apply(variables, x)`.
    """
    from avloc_jax.extraction import convert

    variables = convert.load_converted(weights_dir, "vggish")
    if postprocess:
        pca = convert.load_converted(weights_dir, "vggish_pca")
        variables = {"params": {**variables["params"], "pca": pca["params"]["pca"]}}
    return VGGish(postprocess=postprocess), variables
