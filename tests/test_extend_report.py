"""bench/extend_report.py: more seeds added to a report of the same study, statistics
recomputed from the runs, rows not extended paired with full on the seeds they have."""

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
extend_report = importlib.import_module("extend_report")


def _run(variant, seed, score):
    return {
        "variant": variant,
        "seed": seed,
        "seconds": 60.0,
        "test": {"accuracy": score, "accuracy_ungated": score},
        "val": {"accuracy": score, "accuracy_ungated": score},
    }


def _report(runs, **changes):
    return {
        "config": "configs/ave.py",
        "data": "the `ave` benchmark",
        "condition": "default",
        "condition_params": {},
        "bench_seed": 0,
        "scaled": {"train.num_steps": [6000, 500]},
        "keys": ["accuracy", "accuracy_ungated"],
        "seeds": sorted({r["seed"] for r in runs}),
        "command": "python bench/ablations.py ...",
        "machine": {"cpu_model": "test"},
        "run_minutes": len(runs),
        "runs": runs,
        **changes,
    }


def _base():
    # full leads concat by 1 point on seeds 0-4; gate0 only has seeds 0-4.
    runs = [_run("full", s, 0.90) for s in range(5)]
    runs += [_run("concat", s, 0.89 - 0.001 * s) for s in range(5)]
    runs += [_run("gate0", s, 0.90) for s in range(5)]
    return _report(runs)


def _more():
    runs = [_run("full", s, 0.90) for s in range(5, 10)]
    runs += [_run("concat", s, 0.89 - 0.001 * s) for s in range(5, 10)]
    return _report(runs, command="python bench/ablations.py --seeds 5,6,7,8,9 ...")


def test_runs_are_added_and_the_statistics_recomputed():
    merged = extend_report.extend(_base(), _more())
    assert merged["seeds"] == list(range(10))
    assert len(merged["runs"]) == 25
    concat = merged["paired"]["concat"]
    assert concat["n"] == 10 and concat["seeds"] == list(range(10))
    assert concat["mean"] == pytest.approx(0.01 + 0.001 * 4.5)  # mean of 0.01 + 0.001·s
    assert merged["paired"]["gate0"]["n"] == 5  # not extended: paired on seeds 0-4
    assert merged["summary"]["full"]["seeds"] == list(range(10))
    assert merged["extensions"] == [
        {
            "command": "python bench/ablations.py --seeds 5,6,7,8,9 ...",
            "machine": {"cpu_model": "test"},
            "run_minutes": 10.0,  # the added runs' seconds
            "variants": ["concat", "full"],
            "seeds": [5, 6, 7, 8, 9],
        }
    ]
    assert merged["command"] == _base()["command"]  # the original study's command stays


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config": "configs/activitynet12.py"}, "config"),
        ({"scaled": {"train.num_steps": [6000, 300]}}, "scaled"),
        ({"delta": 0.02}, "delta"),
    ],
)
def test_another_study_is_refused(change, message):
    with pytest.raises(ValueError, match=f"not the same study: {message}"):
        extend_report.extend(_base(), {**_more(), **change})


def test_a_run_already_in_the_report_is_refused():
    with pytest.raises(ValueError, match=r"already in the report: \[\('full', 4\)\]"):
        extend_report.extend(_base(), _report([_run("full", 4, 0.5)]))


def test_the_command_rewrites_the_report_and_its_table(tmp_path, capsys):
    report, more = tmp_path / "ablation_x.json", tmp_path / "more.json"
    report.write_text(json.dumps(_base()))
    more.write_text(json.dumps(_more()))
    assert extend_report.main([str(report), str(more)]) == 0
    assert json.loads(report.read_text())["seeds"] == list(range(10))
    assert "concat" in report.with_suffix(".md").read_text()
    assert extend_report.main([str(report), str(more)]) == 2  # the same runs again
    assert capsys.readouterr().err.startswith("extend_report: error: runs already")


def test_only_the_named_rows_are_taken():
    # A report whose full row reused runs already added: take only its gate0 runs.
    base = extend_report.extend(_base(), _more())
    gate0_more = _report([_run("full", 5, 0.90), _run("gate0", 5, 0.88)])
    merged = extend_report.extend(base, gate0_more, ["gate0"])
    assert merged["paired"]["gate0"]["seeds"] == [0, 1, 2, 3, 4, 5]
    assert merged["extensions"][-1]["variants"] == ["gate0"]
    with pytest.raises(ValueError, match="already in the report"):
        extend_report.extend(base, gate0_more)  # full seed 5 twice
    with pytest.raises(ValueError, match=r"no runs of \['concat'\]"):
        extend_report.extend(base, gate0_more, ["concat"])
