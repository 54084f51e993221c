"""bench/conditions_table.py: one line per report and compared row, recomputed from the
per-run scores (paired by seed: mean ± sample sd, 95 % t interval, p, bootstrap interval,
verdict, seeds for 80 % power), never from the reports' stored summaries."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
conditions_table = importlib.import_module("conditions_table")


def _payload(condition, full, gate0, seeds=None):
    runs = [
        {"variant": v, "seed": s, "test": {"average_mAP": x}, "val": {"average_mAP": x}}
        for v, xs in (("full", full), ("gate0", gate0))
        for s, x in zip(seeds or range(len(xs)), xs, strict=True)
    ]
    return {
        "runs": runs,
        "config": "configs/activitynet12.py",
        "data": "the benchmark",
        "condition": condition,
        "scaled": {"train.num_steps": [10000, 1000], "train.batch_size": [32, 16]},
        "keys": ["average_mAP"],
        # What old reports stored (population std, the 2-std verdict): must not be used.
        "summary": {"full": {"average_mAP": [0.0, 0.0]}, "gate0": {"average_mAP": [0.0, 0.0]}},
        "paired": {"gate0": {"mean": 9.9, "std": 0.0, "earns": True}},
    }


def _write(tmp_path, payloads):
    paths = []
    for i, payload in enumerate(payloads):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps(payload))
    return [str(p) for p in paths]


def test_one_line_per_report_and_row(tmp_path, capsys):
    # music: full leads by about 0.1 on every seed: supported.
    full = [0.80, 0.82, 0.78, 0.81, 0.79]
    gate0 = [0.70, 0.72, 0.70, 0.70, 0.71]
    wins = _payload("music", full, gate0)
    # default: the sign flips from seed to seed: inconclusive.
    ties = _payload("default", [0.80, 0.70, 0.75, 0.72, 0.78], [0.75, 0.76, 0.74, 0.77, 0.73])
    paths = _write(tmp_path, (ties, wins))
    assert conditions_table.main(paths) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4  # header, rule, one line per report
    default, music = lines[2], lines[3]
    d = np.subtract(full, gate0)
    sd = np.std(d, ddof=1)
    half = sps.t.ppf(0.975, 4) * sd / np.sqrt(5)
    expected = (
        f"| music | 1000 × 16 | gate0 | 5 | {100 * np.mean(full):.1f} ± "
        f"{100 * np.std(full, ddof=1):.1f} | {100 * np.mean(gate0):.1f} ± "
        f"{100 * np.std(gate0, ddof=1):.1f} | +{100 * d.mean():.2f} ± {100 * sd:.2f} "
        f"| [+{100 * (d.mean() - half):.2f}, +{100 * (d.mean() + half):.2f}] | < 0.001 |"
    )
    assert expected in music
    assert music.endswith("| supported (full ahead) | — |")
    assert "| default |" in default and "| inconclusive | " in default
    assert not default.endswith("| — |")  # an inconclusive row says how many seeds it needs
    assert conditions_table.main([paths[0], "--rows", "concat"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # no concat row: header only
    # Paired with another row: gate0 − full is the negated full − gate0.
    assert conditions_table.main([paths[1], "--reference", "gate0"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()[2:]
    assert f"| full | 5 | {100 * np.mean(gate0):.1f} ± " in line
    assert f"| {-100 * d.mean():+.2f} ± {100 * sd:.2f} |" in line
    assert line.endswith("| supported (full ahead) | — |")


def test_fewer_than_five_seeds_carry_no_claim(tmp_path, capsys):
    three = _payload("music", [0.80, 0.82, 0.78], [0.70, 0.72, 0.70])
    assert conditions_table.main(_write(tmp_path, [three])) == 0
    line = capsys.readouterr().out.strip().splitlines()[2]
    assert "| gate0 | 3 |" in line and "no claim (n = 3 < 5)" in line


def test_mismatched_seeds_are_refused(tmp_path, capsys):
    payload = _payload("music", [0.8, 0.8, 0.8], [0.7, 0.7, 0.7])
    payload["runs"][-1]["seed"] = 7  # gate0 has seeds 0, 1, 7
    assert conditions_table.main(_write(tmp_path, [payload])) == 2
    err = capsys.readouterr().err
    assert "same seeds" in err and "[2]" in err and "[7]" in err


def test_a_file_that_is_not_a_report_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert conditions_table.main([str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"config": "x"}))
    assert conditions_table.main([str(other)]) == 2
    err = capsys.readouterr().err
    assert str(other) in err and "runs" in err


@pytest.mark.parametrize("delta", [0.01, 0.2])
def test_delta_is_an_argument(tmp_path, capsys, delta):
    # full − gate0 ≈ 0.1 ± small: supported at Δ = 1 point; ruled out at Δ = 20 points.
    payload = _payload("music", [0.80, 0.82, 0.78, 0.81, 0.79], [0.70, 0.72, 0.70, 0.70, 0.71])
    assert conditions_table.main(_write(tmp_path, [payload]) + ["--delta", str(delta)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[2]
    assert ("supported (full ahead)" in line) == (delta == 0.01)
    assert ("ruled out" in line) == (delta == 0.2)
