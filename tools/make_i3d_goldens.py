"""Golden outputs of the reference PyTorch I3D (piergiaj/pytorch-i3d) on random weights.

    python tools/make_i3d_goldens.py --reference-checkout /path/to/pytorch-i3d

needs torch and numpy only (not JAX) and a checkout of https://github.com/piergiaj/pytorch-i3d
(the directory holding ``pytorch_i3d.py``; it is imported from there, never copied).
For RGB (3 channels) and flow (2) it builds ``InceptionI3d(400, in_channels=C)``, fills it
with `random_state_dict` (numpy, from a seed, so tests/test_i3d.py regenerates the same
weights without torch), runs it in eval mode on a seeded 16-frame 224x224 snippet and
writes tests/golden/extraction/i3d_{rgb,flow}.npz: the seeds, ``features`` [1, 1024]
(``extract_features``, the [2, 7, 7] average pool of Mixed_5c, squeezed), ``logits``
[1, 400] (``forward``, squeezed) and the reference's state-dict keys and shapes.

The weight and input generators below are imported by the test: keep them numpy-only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Mapping

import numpy as np

MODALITIES = {"rgb": 3, "flow": 2}
WEIGHT_SEEDS = {"rgb": 1503, "flow": 1504}
INPUT_SEEDS = {"rgb": 2503, "flow": 2504}
NUM_CLASSES = 400
CONV_GAIN = 1.3
FRAMES = 16
SIZE = 224
DEFAULT_OUT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "extraction")
)


def random_state_dict(seed: int, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Random but valid float32 I3D weights for reference keys -> shapes.

    Each tensor has its own generator seeded by (seed, crc32(key)), so the values do not
    depend on the order of the keys. Conv weights are normals of variance
    ``CONV_GAIN / fan_in``: with the BatchNorm scalings below, the gain keeps the features
    O(1) (about 0.3 std, 3 max) rather than shrinking (gain 1) or growing to ~100 (He's
    gain 2) through the 22 convs of the deepest path, so a 1e-4 tolerance means
    something. BatchNorm scale and running var are in [0.5, 1.5]; biases
    and running means in [-0.1, 0.1]. ``num_batches_tracked`` counters are skipped.
    """
    state: dict[str, np.ndarray] = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            continue
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key.endswith("conv3d.weight"):
            value = rng.standard_normal(shape) * np.sqrt(CONV_GAIN / int(np.prod(shape[1:])))
        elif key.endswith(("bn.weight", "bn.running_var")):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # conv / BatchNorm bias, running mean
            value = rng.uniform(-0.1, 0.1, shape)
        state[key] = value.astype(np.float32)
    return state


def snippet_input(seed: int, channels: int, batch: int = 1) -> np.ndarray:
    """Uniform [-1, 1] frames [batch, 16, 224, 224, channels] (NTHWC), float32."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch, FRAMES, SIZE, SIZE, channels)).astype(np.float32)


def _checkout_commit(checkout: str) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", checkout, "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def reference_golden(pytorch_i3d, modality: str) -> dict[str, np.ndarray]:
    """Runs the reference on the seeded weights and input of ``modality``."""
    import torch

    channels = MODALITIES[modality]
    model = pytorch_i3d.InceptionI3d(NUM_CLASSES, in_channels=channels)
    reference_state = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in reference_state.items()}
    weights = random_state_dict(WEIGHT_SEEDS[modality], shapes)
    full = {
        k: torch.from_numpy(weights[k]) if k in weights else v for k, v in reference_state.items()
    }
    model.load_state_dict(full, strict=True)
    model.eval()
    # NTHWC -> the reference's NCTHW.
    x = torch.from_numpy(snippet_input(INPUT_SEEDS[modality], channels)).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        features = model.extract_features(x)  # [1, 1024, 1, 1, 1]
        logits = model(x)  # [1, 400, 1]
    assert tuple(features.shape) == (1, 1024, 1, 1, 1), features.shape
    assert tuple(logits.shape) == (1, NUM_CLASSES, 1), logits.shape
    return {
        "weight_seed": np.asarray(WEIGHT_SEEDS[modality]),
        "input_seed": np.asarray(INPUT_SEEDS[modality]),
        "features": features.reshape(1, 1024).numpy().astype(np.float32),
        "logits": logits.reshape(1, NUM_CLASSES).numpy().astype(np.float32),
        "reference_shapes": np.asarray(json.dumps({k: list(s) for k, s in shapes.items()})),
        "torch_version": np.asarray(torch.__version__),
    }


def _save_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    # A temporary sibling, then a rename: never a half-written golden.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference-checkout",
        required=True,
        help="checkout of piergiaj/pytorch-i3d (holds pytorch_i3d.py)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="golden directory")
    args = parser.parse_args(argv)
    checkout = os.path.abspath(args.reference_checkout)
    if not os.path.isfile(os.path.join(checkout, "pytorch_i3d.py")):
        parser.error(f"{checkout} has no pytorch_i3d.py")
    sys.path.insert(0, checkout)
    import pytorch_i3d
    import torch

    torch.manual_seed(0)  # the constructor's own init is overwritten; seeded anyway
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)
    commit = _checkout_commit(checkout)
    for modality in MODALITIES:
        golden = reference_golden(pytorch_i3d, modality)
        golden["reference_commit"] = np.asarray(commit)
        path = os.path.join(args.out, f"i3d_{modality}.npz")
        _save_npz(path, golden)
        print(
            f"{path}: features |max| {np.abs(golden['features']).max():.4g}, "
            f"logits |max| {np.abs(golden['logits']).max():.4g}, reference {commit}"
        )


if __name__ == "__main__":
    main()
