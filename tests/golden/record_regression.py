"""Records the demo's behaviour, so that a change that alters the numbers is seen.

Trains the demo config for a fixed, short budget on CPU and writes what a user sees:
the final val/test metrics, the best step, the test split's detections file and the
output of `avloc predict` on one video of that split. `tests/test_regression.py`
re-runs the same and compares.

    python tests/golden/record_regression.py            # rewrites regression_demo.json
    python tests/golden/record_regression.py --drift '--xla_cpu_max_isa=SSE4_2'

Only re-record when a change is *meant* to alter the numbers, and say so in the commit.
`--drift FLAGS` records nothing: it runs the demo twice, once as is and once with
XLA_FLAGS=FLAGS (another instruction set or threading: what another CPU does to float32
rounding), and prints the largest difference of every float between the two runs; the
tolerances of tests/test_regression.py are derived from it.
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
    """Per video: the number of detections, the TOP_K highest-scoring ones in order, and
    the score of the next one (`cutoff`, None if there is none): a comparison needs it to
    know whether the top-K set is decided by a margin or by a near-tie."""
    summary = {}
    for video, entries in payload["results"].items():
        ranked = sorted(entries, key=lambda e: (-e["score"], e["segment"][0], e["label"]))
        cutoff = ranked[TOP_K]["score"] if len(ranked) > TOP_K else None
        summary[video] = {"count": len(entries), "top": ranked[:TOP_K], "cutoff": cutoff}
    return summary


def _config_args() -> list[str]:
    sys.path.insert(0, str(REPO))
    from avloc_jax.common.config_overrides import as_flags  # the one override format

    return as_flags(OVERRIDES)


def _run(
    args: list[str], xla_flags: str | None = None, **kwargs: Any
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    return subprocess.run(
        [sys.executable, "-m", "avloc_jax", *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        **kwargs,
    )


def run_demo(tmp: Path, xla_flags: str | None = None) -> dict[str, Any]:
    """Trains, then predicts one test video from feature files: everything to compare.
    `raw_detections` (the whole test detections file) is for same-machine comparisons and
    is not recorded."""
    tmp.mkdir(parents=True, exist_ok=True)
    workdir = tmp / "workdir"
    _run(
        ["train", "--config=configs/demo.py", f"--workdir={workdir}", *_config_args()],
        xla_flags=xla_flags,
    )
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
        ],
        xla_flags=xla_flags,
    )
    return {
        "overrides": OVERRIDES,
        "metrics": metrics,
        "test_detections": summarize_detections(detections),
        "predict": summarize_detections(json.loads(out.read_text())),
        "raw_detections": detections,
    }


def float_drift(a: Any, b: Any, where: str = "") -> dict[str, float]:
    """{path: |a - b|} over every float leaf of two payloads of the same structure (a
    leaf whose structure differs is reported as inf)."""
    if isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b):
        out: dict[str, float] = {}
        for key in a:
            out.update(float_drift(a[key], b[key], f"{where}.{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = {}
        for i, (x, y) in enumerate(zip(a, b)):
            out.update(float_drift(x, y, f"{where}[{i}]"))
        return out
    if isinstance(a, float) and isinstance(b, float):
        return {where: abs(a - b)}
    return {} if a == b else {where: float("inf")}


def drift(xla_flags: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = run_demo(Path(tmp) / "a")
        other = run_demo(Path(tmp) / "b", xla_flags=xla_flags)
    for name in ("metrics", "test_detections", "predict"):
        diffs = float_drift(base[name], other[name])
        worst = max(diffs.items(), key=lambda kv: kv[1], default=("-", 0.0))
        print(
            f"{name}: {len(diffs)} floats compared; largest difference {worst[1]:.3g} at {worst[0]}"
        )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--drift":
        drift(sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        payload = run_demo(Path(tmp))
    del payload["raw_detections"]
    tmp_path = GOLDEN.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(payload, sort_keys=True) + "\n")
    tmp_path.replace(GOLDEN)
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
