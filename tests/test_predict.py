"""`avloc predict`: new feature files and dataset splits -> official ActivityNet JSON."""

import json

import numpy as np
import pytest

from avloc_jax.cli import main as cli
from avloc_jax.data.records import as_str, ground_truth_json
from avloc_jax.serving import inference


@pytest.fixture(scope="module")
def trained(trained_demo):
    """(workdir, dataset) of the session's short demo training run."""
    workdir, dataset, _ = trained_demo
    return workdir, dataset


@pytest.fixture(scope="module")
def video(trained, tmp_path_factory):
    """Feature files of the first test video, plus its record."""
    _, dataset = trained
    record = dataset.split("test")[0]
    folder = tmp_path_factory.mktemp("features")
    np.save(folder / "v.npy", record["visual"])
    np.save(folder / "a.npy", record["audio"])
    return folder / "v.npy", folder / "a.npy", record


def predict(capsys, *argv):
    """(exit status, stdout, stderr) of `avloc predict ARGV`, run in-process."""
    code = cli.main(["predict", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_prediction_json(payload, class_names, durations):
    assert set(payload) >= {"version", "results", "external_data"}
    assert set(payload["results"]) == set(durations)
    for video_id, detections in payload["results"].items():
        assert detections, video_id
        for d in detections:
            assert d["label"] in class_names
            assert np.isfinite(d["score"])
            start, end = d["segment"]
            assert 0.0 <= start <= end <= durations[video_id] + 1e-6


def test_files_give_json_that_eval_detections_scores(trained, video, tmp_path, capsys):
    workdir, dataset = trained
    visual, audio, record = video
    video_id, duration = as_str(record["video_id"]), float(record["duration"])
    out = tmp_path / "pred.json"
    argv = ["--workdir", workdir, "--visual", visual, "--audio", audio]
    argv += ["--duration", duration, "--video-id", video_id, "--out", out]
    code, stdout, stderr = predict(capsys, *argv)
    assert code == 0, stderr
    assert stdout == ""  # the JSON went to --out; stdout stays clean
    payload = json.loads(out.read_text())
    check_prediction_json(payload, dataset.metadata.class_names, {video_id: duration})
    assert "snippet_labels" not in payload  # a detection-task model

    # The whole test split's ground truth: with this video's alone, a model that never
    # predicts its one class would have no prediction with a ground-truth label (exit 2).
    test = dataset.split("test")
    records = [test[i] for i in range(len(test))]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(ground_truth_json(records, dataset.metadata.class_names, "test")))
    code = cli.main(
        [
            "eval-detections",
            "--ground-truth",
            str(gt),
            "--predictions",
            str(out),
            "--tiou",
            "0.1:0.7:7",
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and 0.0 <= result["average_mAP"] <= 1.0

    # The single-video path agrees with the engine's batched evaluation of this video.
    engine = json.loads((workdir / "results" / "test_detections.json").read_text())["results"][
        video_id
    ]
    mine = payload["results"][video_id]
    assert [d["label"] for d in mine[:5]] == [d["label"] for d in engine[:5]]
    np.testing.assert_allclose(
        [d["score"] for d in mine[:5]], [d["score"] for d in engine[:5]], atol=1e-5
    )


def test_default_duration_is_snippets_times_seconds_per_snippet(trained, video, capsys):
    workdir, _ = trained
    visual, audio, record = video
    code, default, _ = predict(capsys, "--workdir", workdir, "--visual", visual, "--audio", audio)
    assert code == 0
    # demo snippets last 1 s, so T x 1 s is the video's duration
    seconds = len(record["visual"]) * 1.0
    code, explicit, _ = predict(
        capsys, "--workdir", workdir, "--visual", visual, "--audio", audio, "--duration", seconds
    )
    assert code == 0
    assert json.loads(default) == json.loads(explicit)
    assert set(json.loads(default)["results"]) == {"v"}  # the id defaults to the file name


def test_split_equals_the_engines_test_detections(trained, tmp_path, capsys):
    workdir, _ = trained
    out = tmp_path / "test.json"
    code, _, stderr = predict(capsys, "--workdir", workdir, "--split", "test", "--out", out)
    assert code == 0, stderr
    assert json.loads(out.read_text()) == json.loads(
        (workdir / "results" / "test_detections.json").read_text()
    )
    code, _, stderr = predict(capsys, "--workdir", workdir, "--split", "nosuch")
    assert code == 2 and "nosuch" in stderr and "Traceback" not in stderr


def test_audio_of_another_length_is_resampled_with_a_notice(trained, video, tmp_path, capsys):
    workdir, _ = trained
    visual, audio, _ = video
    longer = tmp_path / "a_long.npy"
    np.save(longer, np.repeat(np.load(audio), 3, axis=0))  # 3x the snippet rate
    code, stdout, stderr = predict(
        capsys, "--workdir", workdir, "--visual", visual, "--audio", longer
    )
    assert code == 0, stderr
    assert "resampled" in stderr and str(longer) in stderr
    assert json.loads(stdout)["results"]["v"]


def test_resample_time():
    ramp = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # [10, 3]
    assert inference.resample_time(ramp, 10) is not None
    np.testing.assert_array_equal(inference.resample_time(ramp, 10), ramp)
    down = inference.resample_time(ramp, 5)  # centres 0.5, 2.5, ...: a linear ramp stays linear
    np.testing.assert_allclose(down[:, 0], [0.5, 2.5, 4.5, 6.5, 8.5])
    up = inference.resample_time(ramp, 20)
    assert up.shape == (20, 3) and up.min() >= 0 and up.max() <= 9
    np.testing.assert_allclose(inference.resample_time(np.full((7, 2), 4.0), 3), 4.0)


def _bad_inputs(folder, visual_dim):
    """name -> (path, text the error must contain)."""
    cases = {}
    cases["missing"] = (folder / "nope.npy", "does not exist")
    (folder / "text.npy").write_text("not an array")
    cases["not npy"] = (folder / "text.npy", "cannot read")
    np.save(folder / "3d.npy", np.zeros((4, 5, visual_dim), np.float32))
    cases["3-D"] = (folder / "3d.npy", "3-D")
    np.save(folder / "dim.npy", np.zeros((20, visual_dim + 1), np.float32))
    cases["wrong dim"] = (folder / "dim.npy", f"dimension {visual_dim + 1}")
    nan = np.zeros((20, visual_dim), np.float32)
    nan[3, 2] = np.nan
    np.save(folder / "nan.npy", nan)
    cases["NaN"] = (folder / "nan.npy", "NaN/Inf")
    np.save(folder / "empty.npy", np.zeros((0, visual_dim), np.float32))
    cases["zero length"] = (folder / "empty.npy", "zero snippets")
    np.savez(folder / "archive.npz", x=np.zeros((3, visual_dim)))
    cases["npz"] = (folder / "archive.npz", ".npz")
    np.save(folder / "strings.npy", np.array([["a"] * visual_dim]))
    cases["strings"] = (folder / "strings.npy", "dtype")
    return cases


def test_bad_files_give_clear_errors_without_traceback(trained, video, tmp_path, capsys):
    workdir, dataset = trained
    visual, audio, _ = video
    dv = dataset.metadata.visual_dim
    for name, (path, message) in _bad_inputs(tmp_path, dv).items():
        code, stdout, stderr = predict(
            capsys, "--workdir", workdir, "--visual", path, "--audio", audio
        )
        assert code == 2, name
        assert stdout == "", name
        assert str(path) in stderr and message in stderr, (name, stderr)
        assert f"[T, {dv}]" in stderr, (name, stderr)  # says what was expected
        assert "Traceback" not in stderr, name
    # the audio file is checked against the audio size
    code, _, stderr = predict(capsys, "--workdir", workdir, "--visual", visual, "--audio", visual)
    assert code == 2 and f"[T, {dataset.metadata.audio_dim}]" in stderr and "audio" in stderr
    code, _, stderr = predict(
        capsys, "--workdir", workdir, "--visual", visual, "--audio", audio, "--duration", -3
    )
    assert code == 2 and "--duration" in stderr


def test_option_and_source_errors(trained, video, tmp_path, capsys):
    workdir, _ = trained
    visual, audio, _ = video
    assert predict(capsys, "--workdir", workdir)[0] == 2  # neither files nor split
    assert predict(capsys, "--workdir", workdir, "--visual", visual)[0] == 2  # no audio
    assert (
        predict(
            capsys, "--workdir", workdir, "--visual", visual, "--audio", audio, "--split", "test"
        )[0]
        == 2
    )
    code, _, stderr = predict(
        capsys, "--workdir", tmp_path / "absent", "--visual", visual, "--audio", audio
    )
    assert code == 1 and "does not exist" in stderr
    code, _, stderr = predict(capsys, "--bundle", tmp_path, "--visual", visual, "--audio", audio)
    assert code == 1 and "not an inference bundle" in stderr


def test_ave_models_add_gated_snippet_labels(trained, video, tmp_path, capsys):
    """A model whose dataset task is 'ave' labels every snippet: the video's top class
    where μ_t >= eval.reliability_threshold, background elsewhere."""
    workdir, dataset = trained
    visual, audio, _ = video
    loaded = inference.load_workdir(workdir)
    bundle = inference.write_bundle(loaded, tmp_path / "bundle")
    meta_path = bundle / inference.METADATA_FILE
    meta = json.loads(meta_path.read_text())
    meta["task"] = "ave"
    meta_path.write_text(json.dumps(meta))

    code, stdout, stderr = predict(capsys, "--bundle", bundle, "--visual", visual, "--audio", audio)
    assert code == 0, stderr
    labels = json.loads(stdout)["snippet_labels"]["v"]
    outputs = inference.predict_video(loaded, np.load(visual), np.load(audio))
    top = dataset.metadata.class_names[int(np.argmax(outputs["video_scores"]))]
    theta = loaded.config.eval.reliability_threshold
    assert labels == [top if mu >= theta else "background" for mu in outputs["reliability"]]
    # a whole split: one label per snippet of every video
    code, stdout, stderr = predict(capsys, "--bundle", bundle, "--split", "val")
    assert code == 0, stderr
    per_video = json.loads(stdout)["snippet_labels"]
    source = dataset.split("validation")
    assert {as_str(r["video_id"]): len(r["visual"]) for r in source} == {
        k: len(v) for k, v in per_video.items()
    }
    assert set(sum(per_video.values(), [])) <= set(dataset.metadata.class_names) | {"background"}


def test_one_predict_function_serves_splits_videos_and_attention(trained):
    """predict_video / predict_records (each video padded to a multiple of 32) and
    predict_split (the evaluation buckets) are the same forward pass: the same outputs,
    and on request the class logits and the cross-attention logits of every stage."""
    from avloc_jax.evaluation import predict as predict_fn

    workdir, dataset = trained
    loaded = inference.load_workdir(workdir)
    source = dataset.split("validation")
    payload, by_index = inference.predict_split(loaded, dataset, "validation")
    records = [source[i] for i in range(3)]
    outputs = inference.predict_records(loaded, records, with_attention=True)
    stages = loaded.config.model.num_stages
    for index, (record, video) in enumerate(zip(records, outputs)):
        t = len(record["visual"])
        for key in ("video_scores", "posterior", "reliability"):
            np.testing.assert_allclose(video[key], by_index[index][key], atol=1e-5, err_msg=key)
        assert video["class_logits"].shape == (t, loaded.metadata.num_classes)
        assert sorted(video["attention_logits"]) == list(range(stages))
        heads = loaded.config.model.num_heads
        assert all(v.shape == (heads, t, t) for v in video["attention_logits"].values())
        single = inference.predict_video(loaded, record["visual"], record["audio"])
        np.testing.assert_allclose(single["posterior"], video["posterior"], atol=1e-6)
        assert single["attention_logits"] == {}  # not requested
        # the split's JSON is the shared post-processing of the same outputs
        video_id = as_str(record["video_id"])
        expected = predict_fn.detections_json(
            {video_id: (video, float(record["duration"]))},
            loaded.metadata.class_names,
            loaded.config.localization,
        )["results"][video_id]
        assert [d["label"] for d in payload["results"][video_id]] == [d["label"] for d in expected]
        np.testing.assert_allclose(
            [d["score"] for d in payload["results"][video_id]],
            [d["score"] for d in expected],
            atol=1e-4,
        )


def test_multiple_buckets_pad_each_video_to_the_next_multiple():
    from avloc_jax.evaluation import predict as predict_fn

    assert predict_fn.multiple_buckets([1, 32, 33, 70, 64], 32) == (32, 64, 96)
    import jax

    devices = jax.device_count()
    assert inference.serving_batch_size(1, 16) == devices  # one row per device at least
    assert inference.serving_batch_size(40, 16 * devices) == 16 * devices


def _error_line(stderr, program="avloc predict"):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), stderr
    return lines[0]


def test_bad_outputs_and_inputs_leave_nothing_new(trained, video, tmp_path, capsys):
    """An --out or --plot that cannot be written is refused before any work; a failure
    after the outputs' folders were made removes them again; each is one error line."""
    workdir, _ = trained
    visual, audio, _ = video
    (tmp_path / "file").write_text("")
    (tmp_path / "folder").mkdir()
    files = ["--workdir", workdir, "--visual", visual, "--audio", audio]
    cases = [
        (["--out", tmp_path / "folder"], 2, f"--out: {tmp_path / 'folder'} is a folder"),
        (["--out", tmp_path / "file" / "p.json"], 2, f"{tmp_path / 'file'} is not a folder"),
        (["--plot", tmp_path / "file"], 2, f"--plot: {tmp_path / 'file'} is not a folder"),
        # checked only once the model is loaded: the outputs' folders are made by then
        (["--out", tmp_path / "new" / "p.json", "--plot", tmp_path / "new" / "figs",
          "--duration", "0"], 2, "--duration must be a positive number"),
    ]  # fmt: skip
    for extra, status, message in cases:
        code, stdout, stderr = predict(capsys, *files, *extra)
        assert code == status and stdout == "", extra
        assert message in _error_line(stderr), extra
    bad_config = tmp_path / "bad_workdir"
    bad_config.mkdir()
    (bad_config / "config.json").write_text("{not json")
    code, _, stderr = predict(capsys, "--workdir", bad_config, "--visual", visual, "--audio", audio)
    assert code == 1 and f"cannot load {bad_config}: {bad_config / 'config.json'}" in _error_line(
        stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_workdir", "file", "folder"]
    assert list((tmp_path / "folder").iterdir()) == []
