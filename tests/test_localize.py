"""`avloc localize` end to end: video files -> features (cached) -> a bundle's predictions
-> predictions.json, a PNG timeline per video and a table. The bundle is a freshly
initialised model whose feature sizes are those of the stand-in extractor
(tests/media_helpers.py), exported with `inference.write_bundle`."""

import json

import media_helpers as mh
import numpy as np
import pytest
from demo_helpers import tiny_config

from avloc_jax import model as models
from avloc_jax.cli import main as cli
from avloc_jax.data.records import TASK_DETECTION, DatasetMetadata
from avloc_jax.extraction import media, pipeline
from avloc_jax.serving import inference, localize

VISUAL_DIM, AUDIO_DIM = 8, 2  # the stand-in: 4 colour features + 4 projections; 2 audio


def extractor():
    return mh.standin_extractor(rgb_extra=VISUAL_DIM - 4, audio_dim=AUDIO_DIM)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(bundle folder, [two clips]) shared by the module."""
    root = tmp_path_factory.mktemp("localize")
    metadata = DatasetMetadata(
        name="standin",
        task=TASK_DETECTION,
        class_names=("tone", "square"),
        visual_dim=VISUAL_DIM,
        audio_dim=AUDIO_DIM,
    )
    config = tiny_config()
    model = models.build_model(config.model, metadata.num_classes)
    params = inference.init_params(model, metadata)
    loaded = inference.LoadedModel(config, metadata, 0.64, params, 0, "test (random init)")
    bundle = inference.write_bundle(loaded, root / "bundle")
    clips = [
        mh.write_clip(root / "first.mp4"),
        mh.write_clip(root / "second.mp4", seconds=4.0, tone_at=0.64),
    ]
    return bundle, clips


def test_localize_writes_predictions_figures_and_table(setup, tmp_path, monkeypatch):
    bundle, clips = setup
    out = tmp_path / "out"
    result = localize.localize(clips, bundle, extractor(), out, progress=False)

    payload = json.loads((out / "predictions.json").read_text())
    assert payload == json.loads(json.dumps(result.payload))
    assert set(payload) >= {"version", "results", "external_data"}
    assert sorted(payload["results"]) == ["first", "second"]
    # The snippet grid covers floor(25 s / 16) x 0.64 s: 4 snippets (2.56 s) of the 3-s
    # clip, 6 (3.84 s) of the 4-s one; segments lie on it, not stretched to the duration.
    grid = {"first": 4 * 0.64, "second": 6 * 0.64}
    ends = []
    for video_id, detections in payload["results"].items():
        for d in detections:
            assert d["label"] in ("tone", "square")
            start, end = d["segment"]
            assert 0 <= start < end <= grid[video_id] + 1e-6
            ends.append((video_id, end))
    assert any(abs(end - grid[v]) < 1e-6 for v, end in ends)  # the last snippet reaches it
    # the features under OUT/features are the pipeline's layout, T = floor(25 s / 16)
    assert np.load(out / "features" / "visual" / "second.npy").shape == (6, VISUAL_DIM)
    assert np.load(out / "features" / "audio" / "second.npy").shape == (6, AUDIO_DIM)
    assert [v.duration for v in result.extraction.videos] == pytest.approx([3.0, 4.0])

    names = sorted(p.name for p in out.glob("*.png"))
    assert {"first.png", "second.png"} <= set(names)
    for path in result.figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    lines = result.table.splitlines()
    assert lines[0].split() == ["video", "duration", "label", "start", "end", "score"]
    assert any(line.startswith("first") for line in lines)
    assert any(line.startswith("second") for line in lines)
    best = max(payload["results"]["first"], key=lambda d: d["score"], default=None)
    if best is not None:
        assert f"{best['score']:.3f}" in result.table

    # unchanged videos: the cached features, the same predictions, nothing decoded
    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached video was decoded again")

    monkeypatch.setattr(media, "probe", no_decoding)
    monkeypatch.setattr(media, "VideoReader", no_decoding)
    again = localize.localize(clips, bundle, extractor(), out, progress=False)
    assert [v.cached for v in again.extraction.videos] == [True, True]
    assert again.payload == result.payload


def test_detection_table_lists_the_top_detections():
    payload = {
        "results": {
            "a": [
                {"label": "x", "score": 0.2, "segment": [1.0, 2.0]},
                {"label": "y", "score": 0.9, "segment": [0.0, 1.5]},
            ],
            "b": [],
        }
    }
    table = localize.detection_table(payload, {"a": 3.0, "b": 2.0}, top=1)
    lines = table.splitlines()
    assert len(lines) == 4  # header, rule, a's best, b's none
    assert lines[2].split() == ["a", "3.0", "s", "y", "0.00", "1.50", "0.900"]
    assert "(no detection)" in lines[3]


def test_feature_sizes_must_match_the_model(setup, tmp_path):
    bundle, clips = setup
    with pytest.raises(inference.InputError, match="8 visual and 2 audio dimensions") as err:
        localize.localize(clips[:1], bundle, mh.standin_extractor(), tmp_path, progress=False)
    assert "avloc build-data generic" in str(err.value)  # it says how to get a model


def test_a_model_of_other_sizes_is_refused_before_any_weights_load(setup, tmp_path):
    """The demo bundle's case: a model whose sizes are not I3D + VGGish fails with the
    way to get one, before the (absent) converted weights are even looked for."""
    bundle, clips = setup
    missing_weights = tmp_path / "no_weights"
    with pytest.raises(inference.InputError) as err:
        localize.localize(clips[:1], bundle, missing_weights, tmp_path / "out", progress=False)
    message = str(err.value)
    assert "'standin' dataset" in message and "gives 1024 and 128" in message
    assert "configs/generic.py" in message and "avloc export" in message
    assert not (tmp_path / "out").exists()


def test_a_features_folder_is_localized_without_decoding(setup, tmp_path, monkeypatch):
    """`extract-features` output in, the same predictions as from the videos out, and no
    video decoded nor extractor needed."""
    bundle, clips = setup
    features = tmp_path / "features"
    pipeline.extract_features(clips, features, extractor(), progress=False)
    from_videos = localize.localize(clips, bundle, extractor(), tmp_path / "a", progress=False)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a features folder must not be decoded")

    monkeypatch.setattr(media, "probe", no_decoding)
    monkeypatch.setattr(media, "decode_video", no_decoding)
    from avloc_jax.serving import figures as serving_figures

    drawn = []
    real_item = serving_figures.video_item

    def recording_item(loaded, video_id, duration, outputs, truth, snippet_seconds=None):
        drawn.append((video_id, duration, snippet_seconds))
        return real_item(loaded, video_id, duration, outputs, truth, snippet_seconds)

    monkeypatch.setattr(serving_figures, "video_item", recording_item)
    result = localize.localize([features], bundle, None, tmp_path / "b", progress=False)
    # Figures: titled with the real duration (3 s, 4 s), drawn on the 0.64-s grid.
    assert [(v, round(d, 2), s) for v, d, s in drawn] == [
        ("first", 3.0, 0.64),
        ("second", 4.0, 0.64),
    ]
    assert result.payload == from_videos.payload
    assert sorted(p.name for p in result.figures) == sorted(p.name for p in from_videos.figures)
    assert result.table == from_videos.table  # durations come from the manifest


def test_bad_features_folders_are_named(setup, tmp_path):
    bundle, clips = setup
    features = tmp_path / "features"
    pipeline.extract_features(clips, features, extractor(), progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=f"{empty} is a folder without manifest.json"):
        localize.localize([empty], bundle, None, out, progress=False)
    with pytest.raises(ValueError, match="not both"):
        localize.localize([features, clips[0]], bundle, None, out, progress=False)
    with pytest.raises(ValueError, match="need --extractor"):
        localize.localize(clips, bundle, None, out, progress=False)
    (features / "audio" / "second.npy").unlink()
    with pytest.raises(ValueError, match="audio features of video 'second'.*do not exist"):
        localize.localize([features], bundle, None, out, progress=False)
    (features / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json: cannot read it as JSON"):
        localize.localize([features], bundle, None, out, progress=False)
    assert not out.exists()  # nothing written for any of them


def run(capsys, *argv):
    code = cli.main([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_localize_command(setup, tmp_path, capsys, monkeypatch):
    bundle, clips = setup
    weights = tmp_path / "weights"
    code, _, err = run(capsys, "localize", clips[0], "--bundle", bundle, "--extractor", weights)
    assert code == 2 and err.startswith("avloc localize: error:") and "needs a model" in err
    # From here on the converted weights are the stand-in's sizes.
    monkeypatch.setattr(localize, "extractor_sizes", lambda flow: (VISUAL_DIM, AUDIO_DIM, "s"))
    code, _, err = run(capsys, "localize", clips[0], "--bundle", bundle, "--extractor", weights)
    assert code == 1 and f"{weights} does not exist" in err  # nothing converted there

    loads = []

    def fake_load(weights_dir, **kwargs):
        loads.append((weights_dir, kwargs))
        return extractor()

    monkeypatch.setattr(pipeline, "load_extractor", fake_load)
    out = tmp_path / "out"
    argv = ["localize", *clips, "--bundle", bundle, "--extractor", weights, "--out", out]
    code, stdout, err = run(capsys, *argv, "--quiet")
    assert code == 0, err
    assert loads[0][1]["flow"] is False  # an 8-d model: RGB only
    assert stdout.splitlines()[0].split()[:3] == ["video", "duration", "label"]
    assert (out / "predictions.json").exists() and (out / "first.png").exists()
    assert "detections for 2 video(s)" in err

    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00" * 4096)
    code, _, err = run(capsys, "localize", corrupt, "--bundle", bundle, "--extractor", weights)
    assert code == 2 and "error:" in err and "broken.mp4" in err
    code, _, err = run(capsys, "localize", clips[0], "--bundle", tmp_path, "--extractor", weights)
    assert code == 1 and "not an inference bundle" in err

    features = tmp_path / "features"
    pipeline.extract_features(clips, features, extractor(), progress=False)
    code, stdout, err = run(capsys, "localize", features, "--bundle", bundle, "--out", out / "f")
    assert code == 0 and "detections for 2 video(s)" in err, err
    assert "extractor is not used" not in err
    argv = ["localize", features, "--bundle", bundle, "--extractor", weights, "--out", out / "g"]
    code, stdout, err = run(capsys, *argv)
    assert code == 0 and "note: a features folder is used as it is" in err, err
    code, _, err = run(capsys, "localize", clips[0], "--bundle", bundle)
    assert code == 2 and err.startswith("avloc localize: error:") and "--extractor" in err


def test_extract_features_command(setup, tmp_path, capsys, monkeypatch):
    _, clips = setup
    out = tmp_path / "features"
    code, _, err = run(capsys, "extract-features", clips[0], "--out", out, "--weights", tmp_path)
    assert code == 1 and "weights" in err  # no converted weights in tmp_path

    monkeypatch.setattr(pipeline, "load_extractor", lambda *a, **k: extractor())
    code, stdout, err = run(
        capsys, "extract-features", *clips, "--out", out, "--weights", tmp_path, "--quiet"
    )
    assert code == 0, err
    assert [line.split("\t")[:2] for line in stdout.splitlines()] == [
        ["first", "extracted"],
        ["second", "extracted"],
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["videos"]) == ["first", "second"]
    code, stdout, _ = run(capsys, "extract-features", clips[0], "--out", out, "--weights", tmp_path)
    assert code == 0 and stdout.split("\t")[1] == "cached"

    silent = mh.write_clip(tmp_path / "silent.mp4", audio=False)
    code, _, err = run(
        capsys, "extract-features", silent, "--out", out, "--weights", tmp_path, "--fail-fast"
    )
    assert code == 2 and "silent.mp4: has no audio track" in err

    # With --fail-fast, a bad video among good ones: refused before any work, nothing
    # written anywhere (without it: tests/test_extract_inputs.py).
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 4096)
    fresh = tmp_path / "fresh"
    code, _, err = run(
        capsys,
        "extract-features",
        clips[1],
        corrupt,
        "--out",
        fresh,
        "--weights",
        tmp_path,
        "--fail-fast",
    )
    assert code == 2 and err.startswith("avloc extract-features: error:")
    assert "corrupt.mp4" in err and len(err.strip().splitlines()) == 1
    assert not fresh.exists()
    code, _, err = run(
        capsys,
        "extract-features",
        silent,
        "--out",
        out,
        "--weights",
        tmp_path,
        "--allow-missing-audio",
    )
    assert code == 0 and "trained with audio" in err
