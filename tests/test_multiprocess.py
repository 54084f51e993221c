"""Two real processes (4 CPU devices each, jax.distributed over localhost) train exactly
like one process with 8 devices; each process reads only its shard; only process 0 writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import portpicker

WORKER = Path(__file__).resolve().parent / "multiprocess_worker.py"


def _run(args, timeout=400):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS")}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_match_one_process_with_eight_devices(tmp_path):
    single = _run(["--workdir", str(tmp_path / "single"), "--devices-per-process", "8"])
    out, err = single.communicate(timeout=400)
    assert single.returncode == 0, err[-3000:]
    reference = json.loads(out.strip().splitlines()[-1])
    assert reference["devices"] == 8 and reference["processes"] == 1

    port = portpicker.pick_unused_port()
    workdir = tmp_path / "multi"
    procs = [
        _run(
            [
                "--process-id",
                str(i),
                "--num-processes",
                "2",
                "--port",
                str(port),
                "--devices-per-process",
                "4",
                "--workdir",
                str(workdir),
            ]
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    multi = json.loads(outputs[0][0].strip().splitlines()[-1])
    assert multi["devices"] == 8 and multi["processes"] == 2
    # process 1 reports nothing (gloo's own connection lines aside)
    assert not [line for line in outputs[1][0].splitlines() if line.startswith("{")]
    np.testing.assert_allclose(multi["losses"], reference["losses"], rtol=1e-4, atol=1e-5)

    # Each process read only its own slice of every global batch: about half of the
    # single-process reads each (grain's read-ahead adds a few batches to every count),
    # and not the same videos.
    reads = [json.loads((workdir / f"read_indices_{i}.json").read_text()) for i in range(2)]
    single_reads = json.loads((tmp_path / "single" / "read_indices_0.json").read_text())
    assert reads[0] and reads[1]
    for process_reads in reads:
        assert len(process_reads) <= 0.6 * len(single_reads), (
            len(process_reads),
            len(single_reads),
        )
    assert reads[0][:4] != reads[1][:4]
    assert set(reads[0]) | set(reads[1]) <= set(range(48))
    # Logs and results come from process 0 only: one config, one metrics file, no duplicates.
    events = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [e["step"] for e in events if e["event"] == "train"]
    assert train_steps == sorted(set(train_steps))
