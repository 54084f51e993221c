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
            "v2": {"subset": "validation", "duration": 40.0, "annotations": [{"label": "B", "segment": [5, 15]}]},
            "t1": {"subset": "training", "duration": 40.0, "annotations": [{"label": "B", "segment": [0, 5]}]},
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
    assert "ignored 1 predictions whose label" in err and "ignored 1 predictions on 1 videos absent" in err


def test_linspace_spec_and_table(files, capsys):
    _, _, gt_path, pred_path = files
    code = cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", pred_path,
                     "--subset", "validation", "--tiou", "0.5:0.95:10", "--json"])  # fmt: skip
    parsed = json.loads(capsys.readouterr().out)
    assert code == 0
    np.testing.assert_allclose(parsed["tiou_thresholds"], np.linspace(0.5, 0.95, 10))
    assert len(parsed["mAP"]) == 10 and parsed["average_mAP"] == pytest.approx(np.mean(parsed["mAP"]))
    code = cli.main(
        ["eval-detections", "--ground-truth", gt_path, "--predictions", pred_path, "--subset", "validation"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "avg" in out and "per-class AP" in out and "0.95" in out


@pytest.mark.parametrize("which", ["ground-truth", "predictions"])
def test_missing_file_names_it_and_fails(files, tmp_path, capsys, which):
    _, _, gt_path, pred_path = files
    missing = str(tmp_path / "does_not_exist.json")
    args = {"ground-truth": gt_path, "predictions": pred_path, which: missing}
    code = cli.main(["eval-detections", "--ground-truth", args["ground-truth"], "--predictions", args["predictions"]])
    captured = capsys.readouterr()
    assert code != 0
    assert missing in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_unreadable_json_and_bad_tiou(files, tmp_path, capsys):
    _, _, gt_path, _ = files
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", str(broken)]) == 1
    assert str(broken) in capsys.readouterr().err
    assert cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", gt_path, "--tiou", "x"]) == 1
    assert "tIoU" in capsys.readouterr().err
    # Missing required argument: argparse usage error, exit code 2.
    assert cli.main(["eval-detections", "--ground-truth", gt_path]) == 2


def test_malformed_entries_give_a_clear_error(files, tmp_path, capsys):
    _, _, gt_path, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": {"v1": [{"label": "A", "score": 1.0}]}}))  # no "segment"
    assert cli.main(["eval-detections", "--ground-truth", gt_path, "--predictions", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "malformed" in err and "segment" in err and "Traceback" not in err
