"""Records the behaviour that the architecture redesign must not change.

Trains the demo config for a fixed, short budget on CPU and writes what a user sees:
the final val/test metrics, the best step, the test split's detections file and the
output of `avloc predict` on one video of that split. `tests/test_regression.py`
re-runs the same and compares.

    python tests/golden/record_regression.py            # rewrites regression_demo.json

Only re-record when a change is *meant* to alter the numbers, and say so in the commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = HERE / "regression_demo.json"

# The demo config, shortened: every override below is part of the recorded behaviour.
OVERRIDES = {
    "train.num_steps": 40,
    "train.log_every_steps": 20,
    "train.checkpoint_every_steps": 20,
    "eval.every_steps": 20,
    "loss.consistency_warmup_steps": 20,
}
PREDICT_VIDEO_INDEX = 0  # the test split's first video goes through `avloc predict`
TOP_K = 5  # detections kept per video (the highest scores), to keep the golden file small


def summarize_detections(payload: dict[str, Any]) -> dict[str, Any]:
    """Per video: the number of detections and the TOP_K highest-scoring ones, in order."""
    summary = {}
    for video, entries in payload["results"].items():
        ranked = sorted(entries, key=lambda e: (-e["score"], e["segment"][0], e["label"]))
        summary[video] = {"count": len(entries), "top": ranked[:TOP_K]}
    return summary


def _config_args() -> list[str]:
    sys.path.insert(0, str(REPO))
    from avloc_jax.common.config_overrides import as_flags  # the one override format

    return as_flags(OVERRIDES)


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-m", "avloc_jax", *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        **kwargs,
    )


def run_demo(tmp: Path) -> dict[str, Any]:
    """Trains, then predicts one test video from feature files: everything to compare."""
    workdir = tmp / "workdir"
    _run(["train", "--config=configs/demo.py", f"--workdir={workdir}", *_config_args()])
    results = workdir / "results"
    metrics = {
        split: json.loads((results / f"{split}_metrics.json").read_text())
        for split in ("validation", "test")
    }
    detections = json.loads((results / "test_detections.json").read_text())

    # One video through the user-facing predict path (feature files -> JSON).
    sys.path.insert(0, str(REPO))
    from avloc_jax.data import demo_data
    from configs import demo

    config = demo.get_config()
    dataset = demo_data.make_dataset(config.data.demo, seed=config.seed)
    record = dataset.split(dataset.metadata.test_split)[PREDICT_VIDEO_INDEX]
    np.save(tmp / "visual.npy", np.asarray(record["visual"]))
    np.save(tmp / "audio.npy", np.asarray(record["audio"]))
    out = tmp / "predict.json"
    _run(
        [
            "predict",
            "--workdir",
            str(workdir),
            "--visual",
            str(tmp / "visual.npy"),
            "--audio",
            str(tmp / "audio.npy"),
            "--video-id",
            "v0",
            "--out",
            str(out),
        ]
    )
    return {
        "overrides": OVERRIDES,
        "metrics": metrics,
        "test_detections": summarize_detections(detections),
        "predict": summarize_detections(json.loads(out.read_text())),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        payload = run_demo(Path(tmp))
    tmp_path = GOLDEN.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(payload, sort_keys=True) + "\n")
    tmp_path.replace(GOLDEN)
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
