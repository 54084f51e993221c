"""VGGish against the reference (torchvggish): front end to 1e-5 on synthetic signals,
network to 1e-4 on the same random weights, and the weight converter and
`avloc convert-weights`.

Goldens: tests/golden/extraction/vggish_goldens.npz, written by
tools/make_vggish_goldens.py; the inputs are regenerated here from
tests/vggish_reference_inputs.py (the goldens hold their digests)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import pytest
import vggish_reference_inputs as inputs

from avloc_jax.cli import main as cli
from avloc_jax.extraction import convert, vggish

GOLDEN = Path(__file__).parent / "golden" / "extraction" / "vggish_goldens.npz"
SIXTEEN_K = [name for name, rate in inputs.SIGNALS.items() if rate == vggish.SAMPLE_RATE]


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return inputs.random_vggish_state_dict()


@pytest.fixture(scope="module")
def variables(state_dict) -> dict:
    return convert.convert_state_dict("vggish", state_dict, source="random")


def _signal(name: str, golden) -> tuple[np.ndarray, int]:
    samples, rate = inputs.synthetic_signal(name)
    assert inputs.signal_digest(samples) == str(golden[f"digest/{name}"]), (
        f"synthetic signal {name!r} no longer matches the one the goldens were made from"
    )
    return samples, rate


# ----------------------------------------------------------------------------- front end


@pytest.mark.parametrize("name", SIXTEEN_K)
def test_front_end_matches_reference(name, golden):
    samples, rate = _signal(name, golden)
    ours = vggish.log_mel_examples(samples, rate)
    ref = golden[f"logmel/{name}"]
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_front_end_shapes_and_edge_cases(golden):
    samples, rate = _signal("tone_440", golden)
    # 2 s: 198 STFT frames -> two examples, the 6 remaining frames dropped
    assert vggish.num_stft_frames(samples.shape[0]) == 198
    assert vggish.log_mel_examples(samples, rate).shape == (2, 96, 64)
    assert vggish.log_mel_examples(samples[:399], rate).shape == (0, 96, 64)
    # 96 frames need 400 + 95 * 160 samples: one sample fewer gives no example
    assert vggish.log_mel_examples(samples[:15600], rate).shape == (1, 96, 64)
    assert vggish.log_mel_examples(samples[:15599], rate).shape == (0, 96, 64)
    # silence is the log offset exactly; stereo is the mean of the channels
    silence = vggish.log_mel_examples(np.zeros(16000, np.float32), rate)
    np.testing.assert_array_equal(silence, np.float32(np.log(vggish.LOG_OFFSET)))
    stereo = np.stack([samples, 0.5 * samples], axis=1)
    np.testing.assert_allclose(
        vggish.log_mel_examples(stereo, rate),
        vggish.log_mel_examples(0.75 * samples, rate),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="sample rate"):
        vggish.log_mel_examples(samples, 0)


def test_front_end_tone_lands_in_its_mel_band(golden):
    samples, rate = _signal("tone_440", golden)
    band = int(np.argmax(vggish.log_mel_examples(samples, rate).mean(axis=(0, 1))))
    edges_mel = np.linspace(
        vggish.hertz_to_mel(vggish.MEL_MIN_HZ),
        vggish.hertz_to_mel(vggish.MEL_MAX_HZ),
        vggish.NUM_MEL_BINS + 2,
    )
    # band i is centred at edges[i + 1]: 440 Hz lies between its neighbours' centres
    assert edges_mel[band] < vggish.hertz_to_mel(440.0) < edges_mel[band + 2]


def test_resampled_front_end_is_close_to_resampy(golden):
    # resample_poly with resampy's kaiser_best design, not resampy's interpolator: the
    # log-mel differs slightly, most in the near-silent bands (measured max 0.012).
    samples, rate = _signal("tone_1k_44100", golden)
    ours = vggish.log_mel_examples(samples, rate)
    ref = golden["logmel/tone_1k_44100"]
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref)
    assert diff.max() < 0.02 and diff.mean() < 2e-3, (diff.max(), diff.mean())


# ----------------------------------------------------------------------------- network


def test_network_matches_reference_on_random_weights(golden, variables):
    embedding = jax.jit(vggish.VGGish().apply)(variables, golden["net/input"])
    assert embedding.shape == (4, vggish.EMBEDDING_SIZE)
    ref = golden["net/embedding"]
    np.testing.assert_allclose(np.asarray(embedding), ref, atol=1e-4, rtol=0)
    channel_last = vggish.VGGish().apply(variables, golden["net/input"][..., None])
    np.testing.assert_allclose(np.asarray(channel_last), ref, atol=1e-4, rtol=0)


def test_network_golden_detects_the_flatten_order(golden, variables):
    # fc1_1 rows in PyTorch's NCHW flatten order (c, h, w) instead of torchvggish's
    # transposed (h, w, c): the golden must tell them apart.
    kernel = variables["params"]["fc1_1"]["kernel"]
    chw = kernel.reshape(6, 4, 512, 4096).transpose(2, 0, 1, 3).reshape(12288, 4096)
    params = {**variables["params"], "fc1_1": {**variables["params"]["fc1_1"], "kernel": chw}}
    wrong = np.asarray(vggish.VGGish().apply({"params": params}, golden["net/input"]))
    assert np.abs(wrong - golden["net/embedding"]).max() > 0.1


def test_postprocessing_matches_reference(golden, variables):
    pca = convert.convert_state_dict("vggish_pca", inputs.random_pca_params(), source="random")
    merged = {"params": {**variables["params"], **pca["params"]}}
    quantized = np.asarray(vggish.VGGish(postprocess=True).apply(merged, golden["net/input"]))
    ref, projected = golden["net/postprocessed"], golden["net/projected"]
    assert set(np.unique(ref)) <= set(range(256)) and (ref == 0).any()  # clipping happened
    # A value whose unrounded level lies within float noise of .5 may round either way.
    level = (np.clip(projected, -2.0, 2.0) + 2.0) * 255.0 / 4.0
    ambiguous = np.abs(level - np.floor(level) - 0.5) < 1e-2
    np.testing.assert_array_equal(quantized[~ambiguous], ref[~ambiguous])
    assert np.abs(quantized - ref).max() <= 1


# ----------------------------------------------------------------------------- converter


def test_converter_maps_every_reference_parameter(state_dict, variables):
    assert len(state_dict) == 18
    kernel = variables["params"]["conv2"]["kernel"]
    np.testing.assert_array_equal(kernel, state_dict["features.3.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(
        variables["params"]["fc1_1"]["kernel"], state_dict["embeddings.0.weight"].T
    )


def test_converter_rejects_a_missing_key(state_dict):
    broken = dict(state_dict)
    del broken["features.8.bias"]
    with pytest.raises(convert.ConversionError, match=r"'features\.8\.bias' is missing"):
        convert.convert_state_dict("vggish", broken, source="vggish.pth")


def test_converter_rejects_a_renamed_key(state_dict):
    broken = dict(state_dict)
    broken["features.8.b"] = broken.pop("features.8.bias")
    with pytest.raises(convert.ConversionError, match=r"vggish\.pth: .*'features\.8\.bias'"):
        convert.convert_state_dict("vggish", broken, source="vggish.pth")


def test_converter_rejects_an_unknown_key(state_dict):
    extra = {**state_dict, "embeddings.6.weight": np.zeros((1,), np.float32)}
    with pytest.raises(convert.ConversionError, match=r"not mapped .*embeddings\.6\.weight"):
        convert.convert_state_dict("vggish", extra, source="vggish.pth")


def test_converter_rejects_a_wrong_shape(state_dict):
    wrong = {**state_dict, "embeddings.4.bias": np.zeros((64,), np.float32)}
    with pytest.raises(convert.ConversionError, match=r"params/fc2/bias \(64,\) != \(128,\)"):
        convert.convert_state_dict("vggish", wrong, source="vggish.pth")


def test_converter_rejects_unfilled_and_extra_flax_parameters(state_dict, monkeypatch):
    vgg = "avloc_jax.extraction.vggish"
    monkeypatch.setitem(
        convert.NETWORKS,
        "with_pca",
        convert.NetworkSpec(
            f"{vgg}:vggish_torch_to_flax", f"{vgg}:vggish_template", {"postprocess": True}
        ),
    )
    with pytest.raises(convert.ConversionError, match=r"unfilled: params/pca/pca_eigen_vectors"):
        convert.convert_state_dict("with_pca", state_dict)
    monkeypatch.setitem(
        convert.NETWORKS,
        "pca_only",
        convert.NetworkSpec(f"{vgg}:vggish_torch_to_flax", f"{vgg}:vggish_pca_template"),
    )
    with pytest.raises(
        convert.ConversionError,
        match=r"unfilled: params/pca/pca_eigen_vectors.*does not have: params/conv1/bias",
    ):
        convert.convert_state_dict("pca_only", state_dict)


def test_reading_pth_without_torch_says_what_to_install(tmp_path):
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    path = tmp_path / "vggish-10086976.pth"
    path.write_bytes(b"not read")
    with pytest.raises(convert.ConversionError, match=r"vggish-10086976\.pth.*\[convert\]"):
        convert.read_state_dict(path)


# ----------------------------------------------------------------------------- CLI


def test_convert_weights_cli_round_trip(tmp_path, state_dict, variables, capsys):
    vgg_file, pca_file = tmp_path / "vggish.npz", tmp_path / "pca.npz"
    np.savez(vgg_file, **state_dict)
    pca_params = inputs.random_pca_params()
    np.savez(pca_file, **pca_params)
    out = tmp_path / "weights"
    argv = ["convert-weights", "--vggish", str(vgg_file), "--vggish-pca", str(pca_file)]
    assert cli.main([*argv, "--out", str(out)]) == 0

    info = json.loads((out / "vggish" / convert.WEIGHTS_FILE).read_text())
    assert info["name"] == "vggish" and info["source"] == "vggish.npz"
    assert info["sha256"] == convert.sha256_file(vgg_file)
    assert info["shapes"]["params/fc1_1/kernel"] == [12288, 4096]
    assert sorted(p.name for p in out.iterdir()) == ["vggish", "vggish_pca"]  # no temporaries

    module, loaded = vggish.load_vggish(out, postprocess=True)
    assert module.postprocess
    expected = {
        "params": {
            **variables["params"],
            "pca": {
                "pca_eigen_vectors": pca_params["pca_eigen_vectors"],
                "pca_means": pca_params["pca_means"].reshape(-1),
            },
        }
    }
    jax.tree.map(np.testing.assert_array_equal, loaded, expected)

    # an existing conversion is kept unless --force; a bad file writes nothing
    capsys.readouterr()
    assert cli.main([*argv, "--out", str(out)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    broken = tmp_path / "broken.npz"
    np.savez(broken, **{k: v for k, v in state_dict.items() if k != "features.0.weight"})
    assert (
        cli.main(["convert-weights", "--vggish", str(broken), "--out", str(tmp_path / "w2")]) == 1
    )
    assert "'features.0.weight' is missing" in capsys.readouterr().err
    assert not (tmp_path / "w2").exists()


def test_load_vggish_names_the_missing_directory(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"no converted vggish weights under .*convert-weights"
    ):
        vggish.load_vggish(tmp_path)
