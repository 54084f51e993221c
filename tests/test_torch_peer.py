"""The PyTorch peers of `bench/extract_speed.py --peer torch` (bench/torch_peer.py).

The peers must compute what the Flax networks compute from the same state dict: torch
gets a seeded random state dict, JAX the project's conversion of it, and the features
agree to 1e-4 on a small input. These tests need torch, a bench-only extra that CI does
not install (pip install -e '.[bench]'); the ones that check the script without torch
(the error line, the agreement check, the ratio arithmetic) run everywhere.
"""

import importlib
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avloc_jax.extraction import convert, i3d, vggish

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
extract_speed = importlib.import_module("extract_speed")

NO_TORCH = "torch is a bench-only extra (pip install -e '.[bench]'); CI installs only '.[test]'"

# The smallest I3D input that still pools to one window: 9 frames of 193 x 193.
SMALL_SNIPPET = (1, 9, 193, 193)


def _torch_peer():
    pytest.importorskip("torch", reason=NO_TORCH)
    return importlib.import_module("torch_peer")


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_the_torch_i3d_has_the_state_dict_layout_the_converter_reads(modality):
    peer = _torch_peer()
    channels = i3d.MODALITY_CHANNELS[modality]
    _, state = peer.i3d_peer(modality, seed=1)
    counters = {k for k in state if k.endswith("num_batches_tracked")}
    assert len(counters) == 57  # one per BatchNorm: every conv but the logits
    shapes = {k: tuple(v.shape) for k, v in state.items() if k not in counters}
    assert shapes == i3d.i3d_reference_shapes(channels, 400)


def test_the_torch_i3d_matches_the_flax_i3d_on_the_same_weights():
    peer = _torch_peer()
    import torch

    model, state = peer.i3d_peer("rgb", seed=5)
    variables = convert.convert_state_dict("i3d_rgb", state, source="random")
    pixels = np.random.default_rng(0).integers(0, 256, (*SMALL_SNIPPET, 3), dtype=np.uint8)
    with torch.inference_mode():
        theirs, their_logits = (
            t.numpy() for t in model.features_and_logits(peer.frames_to_torch(pixels))
        )
    x = jnp.asarray(pixels, jnp.float32) * (2.0 / 255.0) - 1.0
    apply = jax.jit(lambda v, x: i3d.InceptionI3D(3).apply(v, x, with_logits=True))
    ours, our_logits = jax.device_get(apply(variables, x))
    assert theirs.shape == ours.shape == (1, i3d.FEATURE_DIM)
    assert np.abs(ours).max() > 0.3  # the weights keep the features O(1): 1e-4 means something
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    np.testing.assert_allclose(our_logits, their_logits, rtol=0, atol=1e-4)


def test_the_torch_vggish_matches_the_flax_vggish_on_the_same_weights():
    peer = _torch_peer()
    import torch

    model, state = peer.vggish_peer(seed=6)
    variables = convert.convert_state_dict("vggish", state, source="random")
    examples = np.random.default_rng(1).normal(-2.0, 2.0, (3, 96, 64)).astype(np.float32)
    with torch.inference_mode():
        theirs = model(torch.from_numpy(examples)).numpy()
    ours = np.asarray(jax.jit(vggish.VGGish().apply)(variables, examples))
    assert theirs.shape == ours.shape == (3, vggish.EMBEDDING_SIZE)
    assert np.abs(ours - ours[::-1]).max() > 0.1  # each example has its own embedding
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


def test_peer_without_torch_is_one_error_line_and_nothing_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    out = tmp_path / "speed.json"
    assert extract_speed.main(["--peer", "torch", "--peer-only", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --peer torch needs PyTorch")
    assert "pip install -e '.[bench]'" in err[0]
    assert not out.exists()


def test_features_beyond_the_tolerance_are_an_error_naming_the_network():
    extract_speed.check_agreement({"i3d_rgb": 6e-7, "vggish": 2e-5})
    with pytest.raises(extract_speed.PeerMismatch, match=r"vggish features differ by 0\.002"):
        extract_speed.check_agreement({"i3d_rgb": 6e-7, "vggish": 2e-3})
    with pytest.raises(extract_speed.PeerMismatch, match="i3d_rgb features differ by nan"):
        extract_speed.check_agreement({"i3d_rgb": float("nan"), "vggish": 2e-3})


def test_rates_are_medians_and_each_round_gives_a_paired_ratio():
    # Round 2 is slow for both sides (load from elsewhere): its ratio is still 2.
    summary = extract_speed.summarise_rounds([1.0, 4.0, 1.5], [2.0, 8.0, 4.5], units=128)
    assert summary["jax_rate"] == pytest.approx(128 / 1.5, abs=1e-3)
    assert summary["torch_rate"] == pytest.approx(128 / 4.5, abs=1e-3)
    assert summary["ratio"] == 2.0 and summary["ratio_range"] == [2.0, 3.0]
