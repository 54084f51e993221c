"""`avloc eval-detections`: JSON output equals the function's, errors name the file."""

import json
import warnings

import numpy as np
import pytest

from avloc_jax.cli import main as cli
from avloc_jax.evaluation import detection_eval


@pytest.fixture
def files(tmp_path):
    gt = {
        "version": "t",
        "database": {
            "v1": {"subset": "validation", "duration": 50.0, "annotations": [
                {"label": "A", "segment": [0, 10]}, {"label": "A", "segment": [20, 30]}]},
            "v2": {"subset": "validation", "duration": 40.0, "annotations": [
                {"label": "B", "segment": [5, 15]}]},
            "t1": {"subset": "training", "duration": 40.0, "annotations": [
                {"label": "B", "segment": [0, 5]}]},
        },
    }  # fmt: skip
    pred = {
        "version": "t",
        "results": {
            "v1": [
                {"label": "A", "score": 0.95, "segment": [1, 11]},
                {"label": "A", "score": 0.9, "segment": [0, 10]},
                {"label": "A", "score": 0.7, "segment": [20, 30]},
                {"label": "Q", "score": 0.7, "segment": [20, 30]},
            ],
            "v2": [{"label": "B", "score": 0.6, "segment": [6, 15]}],
            "t1": [{"label": "B", "score": 0.6, "segment": [0, 5]}],
        },
        "external_data": {},
    }
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(pred))
    return gt, pred, str(gt_path), str(pred_path)


def test_json_output_matches_function(files, capsys):
    gt, pred, gt_path, pred_path = files
    code = cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", pred_path,
                     "--subset", "validation", "--tiou", "0.5,0.9", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0
    parsed = json.loads(out)  # exactly one JSON object on stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = detection_eval.evaluate_detections(gt, pred, [0.5, 0.9], subset="validation")
    for key, value in expected.items():
        assert parsed[key] == value, key
    # Class A is the hand-worked case of test_detection_eval (5/6 and 2/3); B: tIoU 0.9 -> AP 1, 1.
    np.testing.assert_allclose(parsed["per_class_ap"]["A"], [5 / 6, 2 / 3])
    np.testing.assert_allclose(parsed["mAP"], [(5 / 6 + 1) / 2, (2 / 3 + 1) / 2])
    assert (
        "ignored 1 prediction whose label" in err
        and "ignored 1 prediction on 1 video absent" in err
    )


def test_linspace_spec_and_table(files, capsys):
    _, _, gt_path, pred_path = files
    code = cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", pred_path,
                     "--subset", "validation", "--tiou", "0.5:0.95:10", "--json"])  # fmt: skip
    parsed = json.loads(capsys.readouterr().out)
    assert code == 0
    np.testing.assert_allclose(parsed["tiou_thresholds"], np.linspace(0.5, 0.95, 10))
    assert len(parsed["mAP"]) == 10 and parsed["average_mAP"] == pytest.approx(
        np.mean(parsed["mAP"])
    )
    code = cli.main(
        [
            "eval-detections",
            "--ground-truth",
            gt_path,
            "--predictions",
            pred_path,
            "--subset",
            "validation",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "avg" in out and "per-class AP" in out and "0.95" in out


@pytest.mark.parametrize("which", ["ground-truth", "predictions"])
def test_missing_file_names_it_and_fails(files, tmp_path, capsys, which):
    _, _, gt_path, pred_path = files
    missing = str(tmp_path / "does_not_exist.json")
    args = {"ground-truth": gt_path, "predictions": pred_path, which: missing}
    code = cli.main(
        [
            "eval-detections",
            "--ground-truth",
            args["ground-truth"],
            "--predictions",
            args["predictions"],
        ]
    )
    captured = capsys.readouterr()
    assert code != 0
    assert missing in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_unreadable_json_and_bad_tiou(files, tmp_path, capsys):
    _, _, gt_path, _ = files
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert (
        cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", str(broken)]) == 1
    )
    assert str(broken) in capsys.readouterr().err
    assert (
        cli.main(
            ["eval-detections", "--ground-truth", gt_path, "--predictions", gt_path, "--tiou", "x"]
        )
        == 1
    )
    assert "tIoU" in capsys.readouterr().err
    # Missing required argument: argparse usage error, exit code 2.
    assert cli.main(["eval-detections", "--ground-truth", gt_path]) == 2


def _write_predictions(tmp_path, detections):
    path = tmp_path / "bad.json"
    good = {"label": "A", "score": 0.5, "segment": [0, 10]}
    path.write_text(json.dumps({"results": {"v1": [good, *detections], "v2": [good]}}))
    return str(path)


@pytest.mark.parametrize(
    "detection, problem",
    [
        # A new user's mistakes: each error names the file, the video and the entry.
        (
            {"label": "A", "score": "high", "segment": [0, 1]},
            "'score' must be a number; got 'high'",
        ),
        ({"label": "A", "segment": [0, 1]}, "no 'score' key (keys present: 'label', 'segment')"),
        ({"label": "A", "score": 1.0}, "no 'segment' key (keys present: 'label', 'score')"),
        ({"label": "A", "score": 1.0, "segment": [3]}, "'segment' must be [start, end]"),
    ],
)
def test_malformed_prediction_names_file_video_and_entry(
    files, tmp_path, capsys, detection, problem
):
    _, _, gt_path, _ = files
    bad = _write_predictions(tmp_path, [{"label": "A", "score": 0.1, "segment": [1, 2]}, detection])
    assert cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", bad]) == 1
    captured = capsys.readouterr()
    expected = (
        f"avloc eval-detections: error: predictions file {bad!r}, video 'v1', entry 2 (0-based): "
    )
    assert captured.err.startswith(expected + problem), captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_malformed_ground_truth_names_file_video_and_annotation(files, tmp_path, capsys):
    gt, _, _, pred_path = files
    del gt["database"]["v2"]["annotations"][0]["label"]
    bad_gt = tmp_path / "bad_gt.json"
    bad_gt.write_text(json.dumps(gt))
    assert (
        cli.main(["eval-detections", "--ground-truth", str(bad_gt), "--predictions", pred_path])
        == 1
    )
    err = capsys.readouterr().err
    expected = (
        f"ground-truth file {str(bad_gt)!r}, video 'v2', annotation 0 (0-based): no 'label' key"
    )
    assert expected in err, err


def test_reversed_segment_is_scored_with_a_counted_warning(files, tmp_path, capsys):
    _, _, gt_path, _ = files
    bad = _write_predictions(tmp_path, [{"label": "A", "score": 0.9, "segment": [9, 3]}])
    code = cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", bad, "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert (
        "avloc eval-detections: warning: 1 prediction has a reversed segment, start > end "
        "(the first: video 'v1', entry 1 (0-based), [9.0, 3.0])" in captured.err
    ), captured.err
    parsed = json.loads(captured.out)
    assert parsed["num_reversed_segments"] == 1 and parsed["num_predictions"] == 3


def test_no_known_label_fails_naming_the_labels_and_files(files, tmp_path, capsys):
    """Every predicted label unknown to the ground truth: exit 2 and one error line naming
    a few unknown labels with their count and both files, not a table of 0 %."""
    gt, pred, gt_path, _ = files
    names = iter(f"x{i}" for i in range(100))
    renamed = {
        video: [{**entry, "label": next(names)} for entry in entries]
        for video, entries in pred["results"].items()
    }
    pred_path = tmp_path / "renamed.json"
    pred_path.write_text(json.dumps({**pred, "results": renamed}))
    for extra in ([], ["--json"]):
        code = cli.main(
            ["eval-detections", "--ground-truth", gt_path, "--predictions", str(pred_path), *extra]
        )
        out, err = capsys.readouterr()
        assert code == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0] == (
            f"avloc eval-detections: error: none of the 6 predictions in {pred_path} has a "
            f"label of the ground truth {gt_path}: 6 unknown labels (x0, x1, x2, x3, x4, ...); "
            "the ground truth has 2 classes (A, B)"
        )
    # Some known labels: scored, with a warning naming the unknown ones.
    one_known = {**renamed, "v1": [{"label": "A", "score": 0.9, "segment": [0, 10]}]}
    pred_path.write_text(json.dumps({**pred, "results": one_known}))
    code = cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", str(pred_path)])
    out, err = capsys.readouterr()
    assert code == 0 and out.splitlines()[0].endswith("2 classes")
    assert "warning: ignored 2 predictions whose label is not a ground-truth class" in err
    assert "(2 labels: x4, x5)" in err
    # One of a kind is singular.
    code = cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions",
                     files[3], "--subset", "training"])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(": 1 video, 1 segment, 1 class")
