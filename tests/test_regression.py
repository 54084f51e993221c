"""The redesign changed no behaviour: the demo's numbers match those recorded before it.

`tests/golden/regression_demo.json` was written by `tests/golden/record_regression.py`
before the package was split into layers. Same seed, same CPU, same numbers: metrics,
detections and `avloc predict` output agree to float rounding.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN_DIR))

import record_regression  # noqa: E402

TOLERANCE = 1e-6


def _assert_close(actual, expected, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), where
        for key in expected:
            _assert_close(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE, err_msg=where)
    else:
        assert actual == expected, where


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    return record_regression.run_demo(tmp_path_factory.mktemp("regression"))


def test_demo_metrics_match_the_recording(rerun):
    golden = json.loads(record_regression.GOLDEN.read_text())
    assert rerun["overrides"] == golden["overrides"]
    _assert_close(rerun["metrics"], golden["metrics"], "metrics")


def test_demo_detections_and_predictions_match_the_recording(rerun):
    golden = json.loads(record_regression.GOLDEN.read_text())
    _assert_close(rerun["test_detections"], golden["test_detections"], "test_detections")
    _assert_close(rerun["predict"], golden["predict"], "predict")
