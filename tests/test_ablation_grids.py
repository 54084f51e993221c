"""bench/ablations.py as one program driven by grid specs (bench/ablation_grids.py): the
named grids are the studies whose reports docs/ cites, a bad grid is one error line before
anything is written, and every table computes its paired statistics and verdicts by the
one path of bench/ablation_stats.py (checked here against scipy directly)."""

import dataclasses
import importlib
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats as sps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
ablations = importlib.import_module("ablations")
grids = importlib.import_module("ablation_grids")
resolve = importlib.import_module("ablation_resolve")
report = importlib.import_module("ablation_report")
runner = importlib.import_module("ablation_runner")
ablation_stats = importlib.import_module("ablation_stats")
conditions_table = importlib.import_module("conditions_table")

ANET = "configs/activitynet12.py"


def test_named_grids_are_the_studies_of_the_reports_in_docs():
    """Each named grid checks, and re-states what its report in docs/ recorded: config,
    condition, benchmark seed, seeds, budget, rows and each row's overrides."""
    for name, grid in grids.GRIDS.items():
        resolve.check_grid(grid)
        assert grid.name == name
        config = resolve.load_config_file(resolve.config_path(grid))
        if grid.catalogue.output == "docs":
            flavour = resolve.benchmark_flavour(config)
            payload = json.loads((REPO / "docs" / f"results_{flavour}.json").read_text())
            have = {(r["variant"], r["seed"]) for r in payload["runs"]}
            assert {(v, s) for v in grid.variants for s in grid.seeds} <= have, name
            continue
        path = REPO / "docs" / "ablations" / f"ablation_{resolve.report_tag(grid)}.json"
        payload = json.loads(path.read_text())
        assert payload["config"] == grid.config and payload["condition"] == grid.condition
        assert payload["bench_seed"] == grid.bench_seed
        assert set(grid.seeds) <= set(payload["seeds"])
        assert payload["command"].split("--variants ")[1].split()[0] == ",".join(grid.variants)
        assert payload["scaled"] == resolve.scaled_keys(config, grid), name
        for run in payload["runs"]:
            assert run["overrides"] == dict(grid.catalogue.variants[run["variant"]].overrides)
    # The conditions' and the harder condition's predictions, as docs/benchmark.md states them.
    assert grids.GRIDS["anet_music_1000"].rule.predictions == (("full", "gate0"),)
    hard = grids.GRIDS["anet_sparse_occluded_500"].rule
    assert "A harder condition" in hard.written and len(hard.predictions) == 4


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"model.attention_windw": 4}, "unknown config key model.attention_windw"),
        ({"model.fusion": "concatt"}, "model.fusion"),
    ],
)
def test_a_bad_row_is_refused_in_one_line_before_anything_is_written(
    monkeypatch, tmp_path, capsys, overrides, expected
):
    monkeypatch.setitem(grids.SHIPPED.variants, "typo", grids.Variant("A typo", overrides))
    argv = ["--config", ANET, "--variants", "gate0,typo", "--steps", "2",
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]  # fmt: skip
    assert ablations.main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ablations.py: error: row `typo` on configs/activitynet12.py: ")
    assert expected in line
    assert not (tmp_path / "work").exists() and not (tmp_path / "out").exists()
    # A named grid is checked the same way and names itself.
    bad = dataclasses.replace(grids.GRIDS["anet_music_1000"], variants=("full", "typo"))
    monkeypatch.setitem(grids.GRIDS, "anet_music_1000", bad)
    assert ablations.main(["--grid", "anet_music_1000", "--work", str(tmp_path / "w")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "grid `anet_music_1000`: row `typo`" in line and expected in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--config", ANET, "--variants", "full,nope"], "unknown variants ['nope']"),
        (["--grid", "anet_music_1000", "--seeds", "0,1"], "fixes the study; drop --seeds"),
        (["--flavour", "ave", "--condition", "music"], "need --config"),
        (["--config", ANET, "--flavour", "ave"], "give one"),
        (["--config", ANET, "--data-dir", "{tmp}", "--condition", "music"], "not to --data-dir"),
        (["--config", ANET, "--data-dir", "{tmp}/none"], "not a folder"),
        (["--config", "configs/nope.py"], "config file configs/nope.py: not found"),
        (["--config", ANET, "--seeds", "0,0"], "expected distinct integers"),
        (["--config", ANET, "--seeds", "0,x"], "expected comma-separated integers"),
        (["--config", ANET, "--steps", "0"], "--steps 0: expected a positive integer"),
        (["--config", ANET, "--delta", "0"], "--delta 0.0: expected a number > 0"),
    ],
)
def test_a_bad_command_line_is_one_error_line(tmp_path, capsys, argv, expected):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert ablations.main([*argv, "--work", str(tmp_path / "work")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ablations.py: error: ") and expected in line, line
    assert not (tmp_path / "work").exists()


def _runs():
    """full, and three rows whose full − row is clearly positive, inside ±Δ, or unclear."""
    full = [0.80, 0.82, 0.81, 0.79, 0.83]
    rows = {
        "full": full,
        "concat": [x - d for x, d in zip(full, [0.05, 0.07, 0.06, 0.04, 0.065])],
        "audio": [x - d for x, d in zip(full, [0.001, -0.001, 0.0005, 0.0, 0.0015])],
        "visual": [x - d for x, d in zip(full, [0.04, -0.03, 0.05, -0.04, 0.01])],
    }
    return [
        {"variant": v, "seed": s, "test": {"average_mAP": x}, "val": {"average_mAP": x},
         "scaled": {}, "seconds": 1.0, "overrides": {}}
        for v, xs in rows.items()
        for s, x in enumerate(xs)
    ]  # fmt: skip


def _scipy_cells(runs, row):
    """full − row by seed, with scipy alone: the cells every table must show."""
    full = [r["test"]["average_mAP"] for r in runs if r["variant"] == "full"]
    other = [r["test"]["average_mAP"] for r in runs if r["variant"] == row]
    d = np.array(full) - np.array(other)
    n, mean, sd = d.size, d.mean(), d.std(ddof=1)
    low, high = sps.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n))
    p = sps.ttest_rel(full, other).pvalue
    p_cell = f"{p:.3f}" if p >= 0.001 else "< 0.001"
    return f"{100 * mean:+.2f} ± {100 * sd:.2f} | [{100 * low:+.2f}, {100 * high:+.2f}] | {p_cell}"


def test_every_table_judges_a_pair_by_the_one_path():
    runs = _runs()
    delta = 0.01
    verdicts = {
        "concat": "supported (full ahead)",
        "audio": "ruled out",
        "visual": "inconclusive",
    }
    payload = {
        "flavour": "activitynet12", "config": ANET, "data": "the benchmark",
        "condition": "default", "seeds": [0, 1, 2, 3, 4], "scaled": {}, "command": "x",
        "machine": {}, "run_minutes": 1.0, "keys": ["average_mAP"], "num_steps": [600],
        "bench_seed": 0, "runs": runs,
    }  # fmt: skip
    shipped = report.shipped_markdown(payload, delta)
    proxy = report.proxy_markdown(payload, delta)
    across = conditions_table.table([payload], delta=delta)
    paired = ablation_stats.paired_differences(runs, "average_mAP", delta=delta)
    for row, verdict in verdicts.items():
        cells = _scipy_cells(runs, row)
        for table, label in (
            (shipped, grids.SHIPPED.variants[row].label),
            (proxy, grids.PROXY.variants[row].label),
            (across, f"| {row} |"),
        ):
            (line,) = [x for x in table.splitlines() if label in x]
            assert cells in line and verdict in line, (row, line)
        assert paired[row]["verdict"] == verdict.split(" (")[0].replace("full ahead", "")
    assert "| seeds for 80 % power |" in shipped


def test_the_rule_stated_before_the_runs_is_judged_in_the_report():
    grid = grids.Grid(
        grids.SHIPPED, ANET, ("full", "concat", "audio", "visual"), (0, 1, 2, 3, 4),
        name="study", rule=grids.Rule("docs/x.md", (("full", "concat"), ("full", "audio"),
                                                    ("full", "visual"))),
    )  # fmt: skip
    config = SimpleNamespace(data=SimpleNamespace(name="activitynet12"))
    common = {"config": ANET, "data_text": "the benchmark", "data_dir": "/d", "command": "x",
              "machine": {}}  # fmt: skip
    payload = report.report_payload(grid, config, ("average_mAP",), _runs(), common)
    payload = json.loads(json.dumps(payload))  # as read back from the report
    assert payload["grid"] == {"name": "study", "rule": {"written": "docs/x.md", "predictions": [
        ["full", "concat"], ["full", "audio"], ["full", "visual"]]}}  # fmt: skip
    md = report.shipped_markdown(payload)
    assert "Stated before the runs (docs/x.md):" in md
    assert "`full` − `concat` predicted supported (full ahead): as predicted;" in md
    assert "`full` − `audio` predicted supported (full ahead): refuted (ruled out);" in md
    assert "`full` − `visual` predicted supported (full ahead): open (inconclusive);" in md
    # A report without a rule (every report written before grids had one) has no such line.
    del payload["grid"]
    assert "Stated before" not in report.shipped_markdown(payload)


def test_rows_are_paired_with_their_reference():
    shipped = grids.Grid(grids.SHIPPED, ANET, ("gate0", "concat"), (0, 1))
    assert resolve.with_references(shipped, []) == ("full", "gate0", "concat")
    longer = grids.Grid(grids.PROXY, "configs/benchmark_activitynet12.py", ("visual_1k",), (0, 1))
    done = [{"variant": "full_1k", "seed": s} for s in (0, 1)]
    assert resolve.with_references(longer, done) == ("visual_1k",)
    assert resolve.with_references(longer, done[:1]) == ("full_1k", "visual_1k")


def test_quick_grids_are_small_and_named_apart():
    proxy = grids.Grid(grids.PROXY, "configs/benchmark_ave.py", ("full",), (0, 1, 2)).quickened()
    assert proxy.seeds == (0,) and proxy.steps == 100
    config, scaled, _ = resolve.resolve_config(proxy, "full", 0, "/data")
    assert scaled == {"train.num_steps": [600, 100]}  # the proxy study keeps its intervals
    assert config.eval.every_steps == 50 and config.train.num_steps == 100
    assert resolve.report_tag(proxy).endswith("_quick_steps100_bshipped")
    shipped = grids.GRIDS["anet_sparse_audio_1000"].quickened()
    assert shipped.seeds == (0, 1) and shipped.steps == 1000


def test_the_proxy_study_keeps_earlier_runs_and_rewrites_its_block(monkeypatch, tmp_path):
    """--flavour: docs/results_<flavour>.json keeps the runs of earlier commands (the rows
    and seeds run again are replaced), the reference is not retrained when those runs have
    it, and the table between its markers is rewritten with the prose around it kept."""
    docs = tmp_path / "docs"
    docs.mkdir()
    old = [{"variant": v, "seed": s, "num_steps": 600, "seconds": 1.0,
            "test": {"average_mAP": x, "mAP@0.50": x, "mAP@0.75": x}}
           for v, s, x in (("full", 0, 0.8), ("full", 1, 0.82), ("concat", 0, 0.1))]  # fmt: skip
    (docs / "results_activitynet12.json").write_text(
        json.dumps({"runs": old, "commands": ["an earlier command"]})
    )
    begin, end = (
        "<!-- evidence:proxy_activitynet12 begin -->",
        "<!-- evidence:proxy_activitynet12 end -->",
    )
    (docs / "results.md").write_text(f"prose before\n{begin}\nold table\n{end}\nprose after\n")
    trained = []

    def fake_run(grid, variant, seed, data, runs, done_by_hash):
        trained.append((variant, seed))
        x = 0.7 + 0.01 * seed
        return {"variant": variant, "seed": seed, "num_steps": 600, "seconds": 2.0,
                "test": {"average_mAP": x, "mAP@0.50": x, "mAP@0.75": x}}  # fmt: skip

    monkeypatch.setattr(runner, "run_variant", fake_run)
    monkeypatch.setattr(runner, "_data", lambda grid, config, runtime: (tmp_path, "fake"))
    argv = ["--flavour", "activitynet12", "--variants", "concat", "--seeds", "0,1",
            "--work", str(tmp_path / "work"), "--docs", str(docs)]  # fmt: skip
    assert ablations.main(argv) == 0
    assert trained == [("concat", 0), ("concat", 1)]
    payload = json.loads((docs / "results_activitynet12.json").read_text())
    assert [(r["variant"], r["seed"], r["test"]["average_mAP"]) for r in payload["runs"]] == [
        ("full", 0, 0.8), ("full", 1, 0.82), ("concat", 0, 0.7), ("concat", 1, 0.71)]  # fmt: skip
    assert payload["commands"] == [
        "an earlier command",
        "python bench/ablations.py " + " ".join(argv),
    ]
    text = (docs / "results.md").read_text()
    assert text.startswith("prose before\n") and text.endswith(f"{end}\nprose after\n")
    assert "old table" not in text and "| Early concatenation (no cross-attention) | 2 |" in text
    # A smoke run writes no docs.
    before = (docs / "results.md").read_text()
    trained.clear()
    assert ablations.main([*argv, "--quick"]) == 0
    assert trained == [("full", 0), ("concat", 0)]  # no earlier runs: the reference too
    assert (docs / "results.md").read_text() == before
