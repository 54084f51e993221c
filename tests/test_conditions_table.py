"""bench/conditions_table.py: one line per report and compared row, with the numbers the
reports hold (paired mean ± std and the 2-std verdict), nothing recomputed or rounded away."""

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
ablations = importlib.import_module("ablations")
conditions_table = importlib.import_module("conditions_table")


def _payload(condition, full, gate0):
    runs = [
        {"variant": v, "seed": s, "test": {"average_mAP": x}, "val": {"average_mAP": x}}
        for v, xs in (("full", full), ("gate0", gate0))
        for s, x in enumerate(xs)
    ]
    return {
        "runs": runs,
        "config": "configs/activitynet12.py",
        "data": "the benchmark",
        "condition": condition,
        "scaled": {"train.num_steps": [10000, 1000], "train.batch_size": [32, 16]},
        "keys": ["average_mAP"],
        "summary": ablations.summarise(runs, ("average_mAP",)),
        "paired": ablations.paired_differences(runs, "average_mAP"),
    }


def test_one_line_per_report_and_row(tmp_path, capsys):
    # music: full leads by 0.10 on every seed but one (0.08): earns its place.
    wins = _payload("music", [0.80, 0.82, 0.78], [0.70, 0.72, 0.70])
    # default: the sign flips from seed to seed: does not.
    ties = _payload("default", [0.80, 0.70, 0.75], [0.75, 0.76, 0.74])
    paths = []
    for i, payload in enumerate((ties, wins)):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps(payload))
    assert conditions_table.main([str(p) for p in paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4  # header, rule, one line per report
    default, music = lines[2], lines[3]
    d = wins["paired"]["gate0"]
    assert d["mean"] == pytest.approx(0.0933333) and d["earns"] is True
    assert (
        f"| music | 1000 × 16 | gate0 | 80.0 ± 1.6 | 70.7 ± 0.9 | +{100 * d['mean']:.2f} ± "
        in music
    )
    assert music.endswith("| 3 | yes |") and default.endswith("| 3 | no |")
    assert "| default |" in default
    assert conditions_table.main([str(paths[0]), "--rows", "concat"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # no concat row: header only
    # Paired with another row: gate0 − full is the negated full − gate0.
    assert conditions_table.main([str(paths[1]), "--reference", "gate0"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()[2:]
    assert f"| full | 70.7 ± 0.9 | 80.0 ± 1.6 | {-100 * d['mean']:+.2f} ± " in line
    assert line.endswith("| 3 | no |")


def test_a_file_that_is_not_a_report_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert conditions_table.main([str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"config": "x"}))
    assert conditions_table.main([str(other)]) == 2
    err = capsys.readouterr().err
    assert str(other) in err and "paired" in err
