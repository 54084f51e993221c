"""Writes tests/golden/extraction/vggish_goldens.npz from the reference VGGish (torchvggish).

Run once, in an environment with the reference (not the project's: the tests must not
need torch):

    python -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch torchvggish soundfile
    /tmp/refvenv/bin/python tools/make_vggish_goldens.py

(torchvggish imports soundfile and resampy; the former is not among its declared
dependencies.) The inputs come from tests/vggish_reference_inputs.py, which the test
regenerates bit for bit, so only the reference outputs are stored:

* ``logmel/<signal>`` [N, 96, 64] float32: `vggish_input.waveform_to_examples` of each
  synthetic signal (resampy for the 44.1 kHz one), plus ``digest/<signal>``, the sha256 of
  its 16-bit samples;
* ``net/input`` [N, 96, 64]: the examples fed to the network (the chirp's and the
  noise's), ``net/embedding`` [N, 128]: torchvggish's `VGG` with random numpy weights
  (`random_vggish_state_dict`, loaded with ``load_state_dict(strict=True)``),
  ``net/postprocessed`` [N, 128]: its `Postprocessor` with random PCA parameters, and
  ``net/projected`` [N, 128]: the PCA output before quantisation (float64), which tells
  the test where rounding may legitimately go either way.

The weights (~290 MB) are not stored: the test regenerates them from the seed and
converts them with `avloc_jax.extraction.convert`, which tests the converter as well.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import vggish_reference_inputs as inputs  # noqa: E402

DEFAULT_OUT = REPO / "tests" / "golden" / "extraction" / "vggish_goldens.npz"


def reference_examples(samples: np.ndarray, rate: int) -> np.ndarray:
    from torchvggish import vggish_input

    examples = vggish_input.waveform_to_examples(samples, rate, return_tensor=False)
    return np.asarray(examples, dtype=np.float32)


def reference_network(
    examples: np.ndarray,
    state_dict: dict[str, np.ndarray],
    pca: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embedding, postprocessed, projected) of torchvggish on `examples` [N, 96, 64]."""
    import torch
    from torchvggish.torchvggish import VGG, Postprocessor, make_layers

    torch.manual_seed(0)  # the init is overwritten; seeded so nothing depends on luck
    model = VGG(make_layers(), postprocess=False).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()}, strict=True)
    # Postprocessor() downloads the released PCA file; set the same attributes instead.
    post = Postprocessor.__new__(Postprocessor)
    post._pca_matrix = torch.as_tensor(pca["pca_eigen_vectors"]).float()
    post._pca_means = torch.as_tensor(pca["pca_means"].reshape(-1, 1)).float()
    with torch.no_grad():
        x = torch.from_numpy(examples)[:, None, :, :]  # NCHW, as waveform_to_examples
        embedding = model(x)
        postprocessed = post.postprocess(embedding)
    emb = embedding.numpy()
    projected = (
        pca["pca_eigen_vectors"].astype(np.float64)
        @ (emb.T.astype(np.float64) - pca["pca_means"].astype(np.float64))
    ).T
    return emb, postprocessed.numpy().astype(np.float32), projected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    arrays: dict[str, np.ndarray] = {}
    for name in inputs.SIGNALS:
        samples, rate = inputs.synthetic_signal(name)
        arrays[f"logmel/{name}"] = reference_examples(samples, rate)
        arrays[f"digest/{name}"] = np.array(inputs.signal_digest(samples))
        print(
            f"{name}: {samples.shape[0]} samples at {rate} Hz -> {arrays[f'logmel/{name}'].shape}"
        )
    net_input = np.concatenate([arrays["logmel/chirp"], arrays["logmel/noise"]])
    emb, post, projected = reference_network(
        net_input, inputs.random_vggish_state_dict(), inputs.random_pca_params()
    )
    arrays.update(
        {
            "net/input": net_input,
            "net/embedding": emb,
            "net/postprocessed": post,
            "net/projected": projected,
        }
    )
    clipped = float(np.mean(np.abs(projected) > 2.0))
    print(
        f"network: embedding {emb.shape} in [{emb.min():.3g}, {emb.max():.3g}], "
        f"{clipped:.0%} of PCA outputs clipped"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
