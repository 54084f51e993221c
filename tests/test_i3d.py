"""The Flax I3D against the reference PyTorch I3D (piergiaj/pytorch-i3d) on random weights.

The goldens (tests/golden/extraction/i3d_{rgb,flow}.npz) were made by
tools/make_i3d_goldens.py with the reference; this test regenerates the same numpy
weights from their seed (no torch), converts them with `i3d_torch_to_flax` and compares.
"""

import importlib
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avloc_jax.extraction import i3d

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "extraction"
sys.path.insert(0, str(ROOT / "tools"))
goldens = importlib.import_module("make_i3d_goldens")

TOLERANCE = 1e-4


def _golden(modality):
    with np.load(GOLDEN / f"i3d_{modality}.npz") as data:
        return {k: data[k] for k in data.files}


def _reference_state(golden):
    """The reference state dict the golden was made with, counters included."""
    shapes = {k: tuple(s) for k, s in json.loads(str(golden["reference_shapes"])).items()}
    state = goldens.random_state_dict(int(golden["weight_seed"]), shapes)
    state.update({k: np.asarray(0) for k in shapes if k.endswith("num_batches_tracked")})
    return shapes, state


@pytest.fixture(scope="module")
def rgb():
    golden = _golden("rgb")
    return golden, _reference_state(golden)[1]


@pytest.mark.parametrize("modality", ["rgb", "flow"])
def test_the_reference_keys_and_shapes_are_the_architectures(modality):
    shapes, _ = _reference_state(_golden(modality))
    counters = {k for k in shapes if k.endswith("num_batches_tracked")}
    assert len(counters) == 57  # one per BatchNorm: every conv but the logits
    expected = i3d.i3d_reference_shapes(i3d.MODALITY_CHANNELS[modality], goldens.NUM_CLASSES)
    assert {k: s for k, s in shapes.items() if k not in counters} == expected


def test_rgb_matches_the_reference_and_a_32_frame_clip_gives_two_snippet_features(rgb):
    golden, state = rgb
    variables, unmapped = i3d.i3d_torch_to_flax(state, "rgb")
    assert unmapped == []
    module = i3d.InceptionI3D(in_channels=3, num_classes=400)
    # A 32-frame clip: the golden snippet, then 16 mid-grey frames (two noise snippets
    # pool to nearly the same features); two snippets batched on B.
    other = np.zeros((1, 16, 224, 224, 3), np.float32)
    clip = np.concatenate([goldens.snippet_input(int(golden["input_seed"]), 3), other], axis=1)
    assert clip.shape == (1, 32, 224, 224, 3)
    snippets = clip.reshape(2, 16, 224, 224, 3)
    apply = jax.jit(lambda v, x: module.apply(v, x, with_logits=True))
    features, logits = jax.device_get(apply(variables, jnp.asarray(snippets)))
    assert features.shape == (2, i3d.FEATURE_DIM) and features.dtype == np.float32
    assert logits.shape == (2, 400)
    np.testing.assert_allclose(features[:1], golden["features"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(logits[:1], golden["logits"], rtol=0, atol=TOLERANCE)
    # The second snippet's features are its own, not a broadcast of the first's.
    assert np.abs(features[1] - features[0]).max() > 0.1
    # The default call returns the features alone, identical to the with_logits ones.
    plain = jax.jit(module.apply)(variables, jnp.asarray(snippets[:1]))
    np.testing.assert_allclose(np.asarray(plain), features[:1], rtol=0, atol=1e-5)


def test_flow_matches_the_reference():
    golden = _golden("flow")
    variables, _ = i3d.i3d_torch_to_flax(_reference_state(golden)[1], "flow")
    module = i3d.InceptionI3D(in_channels=2, num_classes=400)
    x = jnp.asarray(goldens.snippet_input(int(golden["input_seed"]), 2))
    features, logits = jax.jit(lambda v, x: module.apply(v, x, with_logits=True))(variables, x)
    np.testing.assert_allclose(np.asarray(features), golden["features"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(np.asarray(logits), golden["logits"], rtol=0, atol=TOLERANCE)


def test_a_missing_key_is_named(rgb):
    state = dict(rgb[1])
    del state["Mixed_4d.b2b.bn.running_var"]
    with pytest.raises(i3d.I3DMappingError, match=r"unfilled.*Mixed_4d\.b2b\.bn\.running_var"):
        i3d.i3d_torch_to_flax(state, "rgb")


def test_an_unknown_key_is_named_unless_not_strict(rgb):
    state = dict(rgb[1])
    state["Mixed_6a.b0.conv3d.weight"] = np.zeros((1, 1, 1, 1, 1), np.float32)
    with pytest.raises(i3d.I3DMappingError, match=r"unmapped.*Mixed_6a\.b0\.conv3d\.weight"):
        i3d.i3d_torch_to_flax(state, "rgb")
    state["Mixed_6a.b0.bn.num_batches_tracked"] = np.asarray(0)
    _, unmapped = i3d.i3d_torch_to_flax(state, "rgb", strict=False)
    assert unmapped == ["Mixed_6a.b0.bn.num_batches_tracked", "Mixed_6a.b0.conv3d.weight"]


def test_a_wrong_modality_or_shape_is_named(rgb):
    with pytest.raises(i3d.I3DMappingError, match=r"flow I3D.*Conv3d_1a_7x7\.conv3d\.weight"):
        i3d.i3d_torch_to_flax(rgb[1], "flow")
    state = dict(rgb[1])
    state["Mixed_3b.b0.bn.bias"] = np.zeros(65, np.float32)
    with pytest.raises(i3d.I3DMappingError, match=r"Mixed_3b\.b0\.bn\.bias: \(65,\)"):
        i3d.i3d_torch_to_flax(state, "rgb")
    with pytest.raises(ValueError, match="modality"):
        i3d.i3d_torch_to_flax(rgb[1], "depth")


def test_data_parallel_prefixes_and_a_replaced_logits_layer_convert(rgb):
    state = {f"module.{k}": v for k, v in rgb[1].items()}
    rng = np.random.default_rng(0)
    state["module.logits.conv3d.weight"] = rng.standard_normal((157, 1024, 1, 1, 1))
    state["module.logits.conv3d.bias"] = rng.standard_normal(157)
    variables, _ = i3d.i3d_torch_to_flax(state, "rgb")
    assert variables["params"]["logits"]["conv3d"]["kernel"].shape == (1, 1, 1, 1024, 157)
    np.testing.assert_array_equal(
        variables["params"]["Conv3d_1a_7x7"]["conv3d"]["kernel"],
        np.transpose(rgb[1]["Conv3d_1a_7x7.conv3d.weight"], (2, 3, 4, 1, 0)),
    )
    assert variables["batch_stats"]["Mixed_5c"]["b3b"]["bn"]["var"].shape == (128,)


def test_converted_weights_load_back_and_a_missing_checkpoint_is_named(rgb, tmp_path):
    from avloc_jax.extraction import convert

    variables = convert.convert_state_dict("i3d_rgb", rgb[1], source="seeded")
    convert.save_converted(variables, tmp_path, "i3d_rgb", "seeded", source_sha256="0" * 64)
    module, loaded = i3d.load_i3d(tmp_path, "rgb")
    assert (module.in_channels, module.num_classes) == (3, 400)
    flat, tree = jax.tree_util.tree_flatten(variables)
    loaded_flat, loaded_tree = jax.tree_util.tree_flatten(loaded)
    assert tree == loaded_tree
    for a, b in zip(flat, loaded_flat):
        np.testing.assert_array_equal(a, np.asarray(b))
    with pytest.raises(FileNotFoundError, match="i3d_flow"):
        i3d.load_i3d(tmp_path, "flow")


def test_only_one_pooled_window_is_accepted():
    module = i3d.InceptionI3D()
    variables = i3d.init_shapes(module)
    clip = jax.ShapeDtypeStruct((1, 32, 224, 224, 3), jnp.float32)
    with pytest.raises(ValueError, match=r"pools to \(3, 1, 1\) windows"):
        jax.eval_shape(module.apply, variables, clip)
    with pytest.raises(ValueError, match=r"\[B, T, H, W, 3\]"):
        jax.eval_shape(
            module.apply, variables, jax.ShapeDtypeStruct((1, 16, 224, 224, 2), jnp.float32)
        )


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads"),
    [
        (224, 7, 2, (2, 3)),
        (16, 7, 2, (2, 3)),
        (7, 3, 1, (1, 1)),
        (7, 2, 2, (0, 1)),
        (8, 2, 2, (0, 0)),
        (56, 1, 1, (0, 0)),
    ],
)
def test_same_padding_is_the_references_asymmetric_split(size, kernel, stride, pads):
    assert i3d.same_padding(size, kernel, stride) == pads


def test_the_converter_refuses_a_flow_checkpoint_given_as_rgb(rgb):
    from avloc_jax.extraction import convert

    flow_state = _reference_state(_golden("flow"))[1]
    with pytest.raises(convert.ConversionError, match="Conv3d_1a_7x7"):
        convert.convert_state_dict("i3d_rgb", flow_state, source="flow.pt")


def test_convert_weights_cli_writes_weights_that_reproduce_the_reference(rgb, tmp_path):
    """`avloc convert-weights --i3d-rgb FILE` (a .npz state dict: no torch needed) writes
    WEIGHTS_DIR/i3d_rgb/, and the loaded model gives the reference's features."""
    from avloc_jax.cli import main as cli

    golden, state = rgb
    source = tmp_path / "rgb_imagenet.npz"
    np.savez(source, **state)
    out = tmp_path / "weights"
    assert cli.main(["convert-weights", "--i3d-rgb", str(source), "--out", str(out)]) == 0
    module, variables = i3d.load_i3d(out, "rgb")
    x = jnp.asarray(goldens.snippet_input(int(golden["input_seed"]), 3))
    features = jax.jit(module.apply)(variables, x)
    np.testing.assert_allclose(np.asarray(features), golden["features"], atol=TOLERANCE, rtol=0)
