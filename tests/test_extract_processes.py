"""`avloc extract-features` as real processes (tests/extract_worker.py: the command with
the stand-in networks, one CPU device per process):

* two processes under jax.distributed give the features of one process, bit for bit;
  each extracts its own shard, process 0 merges, the corrupt video is in failures.json
  and every process exits 3;
* a run killed with SIGKILL mid-way leaves no half-written file, and the same command
  run again extracts only the videos without a finished entry, ending with the files
  of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import media_helpers as mh
import numpy as np
import portpicker
import pytest

WORKER = Path(__file__).resolve().parent / "extract_worker.py"
LENGTHS = {"v0": 0.7, "v1": 1.0, "v2": 1.3, "v3": 1.6, "v4": 1.9, "v5": 2.2, "v6": 2.5}


def start(*args, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS")}
    env["AVLOC_PROGRESS"] = "0"
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def arrays(out: Path) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in sorted(out.glob("*/*.npy"))}


def states(stdout: str) -> dict[str, str]:
    return dict(line.split("\t")[:2] for line in stdout.splitlines() if "\t" in line)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The folder of 8 videos (one corrupt) extracted by one process and, at the same
    time, by two processes under jax.distributed."""
    tmp = tmp_path_factory.mktemp("processes")
    videos = tmp / "videos"
    videos.mkdir()
    for name, seconds in LENGTHS.items():
        mh.write_clip(videos / f"{name}.mp4", seconds=seconds, size=(32, 32))
    (videos / "broken.mp4").write_bytes(b"\x00" * 4096)
    port = portpicker.pick_unused_port()
    command = ["--", videos, "--weights", ".", "--quiet", "--out"]
    single = start(*command, tmp / "single")
    group = [
        start("--process-id", i, "--num-processes", 2, "--port", port, *command, tmp / "multi")
        for i in range(2)
    ]
    return videos, tmp, finish(single), [finish(p) for p in group]


def test_two_processes_extract_what_one_process_does(runs):
    videos, tmp, single, group = runs
    code, _, err = single
    assert code == 3, err[-3000:]
    for code, _, err in group:
        assert code == 3, err[-3000:]  # the job's status, in every process
    single_out, multi_out = tmp / "single", tmp / "multi"
    assert len(arrays(single_out)) == 14 and arrays(multi_out) == arrays(single_out)

    # Each process extracted its own shard (by duration: 5.4 s and 5.8 s of video) and
    # wrote its own part; process 0 alone merged them.
    done = [states(out) for _, out, _ in group]
    assert done[0] == {"broken": "failed", "v2": "extracted", "v3": "extracted", "v6": "extracted"}
    assert done[1] == {v: "extracted" for v in ("v0", "v1", "v4", "v5")}
    assert "shard 0/2: 3 extracted, 0 cached, 1 failed" in group[0][2]
    assert "shard 1/2: 4 extracted, 0 cached, 0 failed" in group[1][2]
    merged = "avloc extract-features: merged 2 parts: 7 videos, 1 failed"
    assert merged in group[0][2] and merged not in group[1][2]
    parts = [
        json.loads((multi_out / f"manifest.part-0000{i}-of-00002.json").read_text()) for i in (0, 1)
    ]
    assert [sorted(p["videos"]) for p in parts] == [["v2", "v3", "v6"], ["v0", "v1", "v4", "v5"]]

    manifest = json.loads((multi_out / "manifest.json").read_text())
    assert list(manifest["videos"]) == list(LENGTHS)
    failures = json.loads((multi_out / "failures.json").read_text())["failures"]
    assert [(f["id"], f["path"]) for f in failures] == [("broken", str(videos / "broken.mp4"))]
    assert failures == json.loads((single_out / "failures.json").read_text())["failures"]


def test_a_killed_run_resumes_with_the_files_of_an_uninterrupted_run(runs):
    videos, tmp, single, _ = runs
    out = tmp / "killed"
    command = ["--", videos, "--weights", ".", "--quiet", "--out", out]
    # Slowed down (1 s a video) so that the kill lands mid-way: once a video is finished.
    run = start("--delay", 1.0, *command)
    deadline = time.monotonic() + 120
    finished: dict = {}
    while not finished and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
        try:
            finished = json.loads((out / "manifest.json").read_text())["videos"]
        except (OSError, ValueError):
            finished = {}
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    assert run.returncode == -signal.SIGKILL and finished

    # Nothing under a final name is half-written; the manifest lists only whole videos.
    manifest = json.loads((out / "manifest.json").read_text())["videos"]
    assert 1 <= len(manifest) < len(LENGTHS)
    for path in out.glob("*/*.npy"):
        assert np.load(path).dtype == np.float32
    for entry in manifest.values():
        assert np.load(out / entry["visual"]).shape == tuple(entry["visual_shape"])

    code, stdout, err = finish(start(*command))
    assert code == 3, err[-3000:]
    assert states(stdout) == {
        "broken": "failed",
        **{v: "cached" if v in manifest else "extracted" for v in LENGTHS},
    }
    assert arrays(out) == arrays(tmp / "single")
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
