"""The inputs of the VGGish golden arrays, shared by `tools/make_vggish_goldens.py` (which
runs the reference, torchvggish) and `tests/test_vggish.py` (which runs ours).

Nothing here may depend on anything beyond numpy: the tool runs in a separate venv with
torch. Every input is regenerated bit for bit from a formula and a seed, so the goldens
store only the reference outputs:

* the synthetic signals are rounded to 16-bit PCM (as a decoder delivers them), which
  absorbs the last-ulp differences of `np.sin` between platforms and numpy builds;
* the random network weights come from `np.random.default_rng(seed)` float32 normals,
  whose stream is integer-based and identical across platforms.
"""

from __future__ import annotations

import hashlib

import numpy as np

SEED = 20210315
SECONDS = 2.0  # 2 s at 16 kHz: 198 STFT frames, i.e. two 0.96 s examples (and a remainder)

# name -> sample rate. 44100 exercises resampling (the reference uses resampy).
SIGNALS: dict[str, int] = {
    "silence": 16000,
    "tone_440": 16000,
    "two_tones": 16000,
    "chirp": 16000,
    "clipped": 16000,
    "noise": 16000,
    "short": 16000,  # 0.5 s: shorter than one example, so no example at all
    "tone_1k_44100": 44100,
}

# The torchvggish state dict: key -> shape (PyTorch layouts: conv OIHW, linear [out, in]).
VGGISH_CONVS = {
    0: (64, 1),
    3: (128, 64),
    6: (256, 128),
    8: (256, 256),
    11: (512, 256),
    13: (512, 512),
}
VGGISH_LINEARS = {0: (4096, 512 * 4 * 6), 2: (4096, 4096), 4: (128, 4096)}


def _pcm16(x: np.ndarray) -> np.ndarray:
    """float64 in [-1, 1] -> float32 exactly representable as 16-bit PCM / 32768."""
    return (np.round(np.clip(x, -1.0, 32767 / 32768) * 32768.0) / 32768.0).astype(np.float32)


def synthetic_signal(name: str) -> tuple[np.ndarray, int]:
    """(samples [S] float32, sample rate) of the named synthetic signal."""
    rate = SIGNALS[name]
    seconds = 0.5 if name == "short" else SECONDS
    t = np.arange(int(round(seconds * rate)), dtype=np.float64) / rate
    if name == "silence":
        x = np.zeros_like(t)
    elif name in ("tone_440", "short"):
        x = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    elif name == "two_tones":
        x = 0.3 * np.sin(2 * np.pi * 200.0 * t) + 0.05 * np.sin(2 * np.pi * 3000.0 * t)
    elif name == "chirp":  # linear sweep 100 Hz -> 7000 Hz over the signal
        f0, f1 = 100.0, 7000.0
        x = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t**2))
    elif name == "clipped":  # a 1 kHz tone driven 1.8x past full scale
        x = np.clip(1.8 * np.sin(2 * np.pi * 1000.0 * t), -1.0, 1.0)
    elif name == "noise":
        x = 0.1 * np.random.default_rng(SEED).standard_normal(t.shape)
    elif name == "tone_1k_44100":
        x = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    else:  # pragma: no cover - SIGNALS and this function are edited together
        raise KeyError(name)
    return _pcm16(x), rate


def signal_digest(samples: np.ndarray) -> str:
    """sha256 of the samples as 16-bit PCM: the goldens record it, the test checks it."""
    pcm = np.round(samples.astype(np.float64) * 32768.0).astype("<i2")
    return hashlib.sha256(pcm.tobytes()).hexdigest()


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def random_vggish_state_dict(seed: int = SEED) -> dict[str, np.ndarray]:
    """A torchvggish `VGG` state dict with random weights, He-scaled so that the
    activations stay O(1) through the ReLUs (the outputs are then a meaningful test)."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for index, (out_ch, in_ch) in VGGISH_CONVS.items():
        state[f"features.{index}.weight"] = _normal(
            rng, (out_ch, in_ch, 3, 3), (2.0 / (in_ch * 9)) ** 0.5
        )
        state[f"features.{index}.bias"] = _normal(rng, (out_ch,), 0.05)
    for index, (out_f, in_f) in VGGISH_LINEARS.items():
        state[f"embeddings.{index}.weight"] = _normal(rng, (out_f, in_f), (2.0 / in_f) ** 0.5)
        state[f"embeddings.{index}.bias"] = _normal(rng, (out_f,), 0.05)
    return state


def random_pca_params(seed: int = SEED + 1, scale: float = 0.3) -> dict[str, np.ndarray]:
    """torchvggish's PCA file contents with random values: `pca_eigen_vectors` [128, 128]
    and `pca_means` [128, 1]. `scale` keeps most projections inside the +-2 clip range."""
    rng = np.random.default_rng(seed)
    return {
        "pca_eigen_vectors": _normal(rng, (128, 128), scale / 128**0.5),
        "pca_means": np.abs(_normal(rng, (128, 1), 1.0)),
    }
