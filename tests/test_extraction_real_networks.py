"""`avloc convert-weights` then `avloc extract-features` with the real Flax I3D and VGGish
(seeded random weights, no torch): the pipeline feeds each network what it expects.

The features written to disk must equal the networks applied by hand to the decoded
frames and waveform: I3D on [-1, 1]-scaled 16-frame snippets of the 224 centre crop,
VGGish on the log-mel examples, then the overlap alignment onto the visual grid.
"""

import importlib
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avloc_jax.cli import main as cli
from avloc_jax.extraction import align, i3d, media, vggish

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent / "tools"))
sys.path.insert(0, str(TESTS))
i3d_goldens = importlib.import_module("make_i3d_goldens")
vggish_inputs = importlib.import_module("vggish_reference_inputs")
media_helpers = importlib.import_module("media_helpers")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real_networks")
    rgb_state = i3d_goldens.random_state_dict(7, i3d.i3d_reference_shapes(3, 400))
    np.savez(tmp / "rgb_imagenet.npz", **rgb_state)
    np.savez(tmp / "vggish.npz", **vggish_inputs.random_vggish_state_dict())
    weights = tmp / "weights"
    argv = ["convert-weights", "--i3d-rgb", str(tmp / "rgb_imagenet.npz")]
    argv += ["--vggish", str(tmp / "vggish.npz"), "--out", str(weights)]
    assert cli.main(argv) == 0
    clip = media_helpers.write_clip(tmp / "clip.mp4", seconds=2.0, size=(96, 72))
    out = tmp / "features"
    assert (
        cli.main(
            ["extract-features", str(clip), "--out", str(out), "--weights", str(weights), "--quiet"]
        )
        == 0
    )
    return clip, weights, out


def test_visual_features_are_i3d_on_scaled_center_crops(extracted):
    clip, weights, out = extracted
    visual = np.load(out / "visual" / "clip.npy")
    frames = media.decode_video(clip)  # uint8 [N, 224, 224, 3]
    num = align.num_snippets(len(frames))
    assert visual.shape == (num, i3d.FEATURE_DIM) and num == 3  # 50 frames -> 3 snippets
    snippets = frames[: num * 16].reshape(num, 16, *frames.shape[1:])
    module, variables = i3d.load_i3d(weights, "rgb")
    x = jnp.asarray(snippets, jnp.float32) * (2.0 / 255.0) - 1.0
    expected = np.asarray(jax.jit(module.apply)(variables, x))
    np.testing.assert_allclose(visual, expected, atol=1e-4, rtol=0)


def test_audio_features_are_vggish_aligned_to_the_visual_grid(extracted):
    clip, weights, out = extracted
    audio = np.load(out / "audio" / "clip.npy")
    visual = np.load(out / "visual" / "clip.npy")
    assert audio.shape == (len(visual), 128) and np.isfinite(audio).all()
    waveform = media.decode_audio(clip)
    examples = vggish.log_mel_examples(align.fit_waveform(waveform, len(visual)), 16000)
    module, variables = vggish.load_vggish(weights)
    embeddings = np.asarray(jax.jit(module.apply)(variables, jnp.asarray(examples)))
    np.testing.assert_allclose(audio, align.align_audio(embeddings, len(visual)), atol=1e-4, rtol=0)


def test_random_variables_fill_the_template_reproducibly():
    """`convert-weights --random-init`: the real network's tree, seeded, with BatchNorm
    left as the identity (mean 0, variance 1) and kernels scaled by their fan-in."""
    from avloc_jax.extraction import convert

    first = convert.random_variables("i3d_rgb", 3)
    spec = convert._flat(convert.template("i3d_rgb"))
    flat = convert._flat(first)
    assert {k: (v.shape, v.dtype) for k, v in flat.items()} == {
        k: (tuple(s.shape), s.dtype) for k, s in spec.items()
    }
    again = convert._flat(convert.random_variables("i3d_rgb", 3))
    other = convert._flat(convert.random_variables("i3d_rgb", 4))
    kernels = [k for k in flat if k.endswith("kernel")]
    assert all(np.array_equal(flat[k], again[k]) for k in flat)
    assert not any(np.array_equal(flat[k], other[k]) for k in kernels)
    assert all((flat[k] == 1).all() for k in flat if k.endswith(("/var", "/scale")))
    assert all((flat[k] == 0).all() for k in flat if k.endswith(("/mean", "/bias")))
    first_kernel = flat[kernels[0]]
    fan_in = int(np.prod(first_kernel.shape[:-1]))
    assert abs(first_kernel.std() * np.sqrt(fan_in) - 1.0) < 0.05


def test_random_init_refuses_an_existing_network_before_writing(tmp_path, capsys):
    (tmp_path / "vggish").mkdir()
    code = cli.main(["convert-weights", "--random-init", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("avloc convert-weights: error:")
    assert f"{tmp_path / 'vggish'} exists" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vggish"]  # i3d_rgb not written
    with pytest.raises(SystemExit):
        cli.main(["convert-weights", "--random-init", "--vggish", "x.pth", "--out", "w"])
