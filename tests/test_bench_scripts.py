"""The ablation study's variant table and summaries, and the μ-region diagnostic."""

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
ablation_grids = importlib.import_module("ablation_grids")
ablation_report = importlib.import_module("ablation_report")
ablation_resolve = importlib.import_module("ablation_resolve")
ablation_stats = importlib.import_module("ablation_stats")
reliability_regions = importlib.import_module("reliability_regions")


@pytest.mark.parametrize("flavour", ["activitynet12", "ave"])
def test_every_proxy_variant_resolves_on_its_benchmark_config(flavour):
    """Every row's overrides name keys of configs/benchmark_<flavour>.py with values its
    schema accepts (`check_grid` resolves and validates each), and every group is made of
    known rows paired with a known reference."""
    proxy = ablation_grids.PROXY
    grid = ablation_grids.Grid(
        proxy, f"configs/benchmark_{flavour}.py", proxy.groups["all"], proxy.default_seeds
    )
    ablation_resolve.check_grid(grid)  # raises GridError on any bad row
    for group, members in proxy.groups.items():
        assert set(members) <= set(proxy.variants), group
    for name, variant in proxy.variants.items():
        assert variant.reference in proxy.variants, name
    assert proxy.variants["concat_1k"].reference == "full_1k"


def test_summary_and_table_report_sample_std_and_paired_verdicts():
    keys = ("average_mAP",)
    runs = [
        {"variant": v, "seed": s, "test": {"average_mAP": x}}
        for v, xs in {
            "full": (0.80, 0.82, 0.81),
            "concat": (0.70, 0.71, 0.72),
            "visual": (0.79, 0.81, 0.80),
        }.items()
        for s, x in enumerate(xs)
    ]
    summary = ablation_stats.summarise(runs, keys)
    assert summary["full"]["average_mAP"][0] == pytest.approx(0.81)
    # Every ± is the sample std (ddof = 1): 0.01 here, not the population 0.0082.
    assert summary["full"]["average_mAP"][1] == pytest.approx(0.01)
    payload = {
        "flavour": "activitynet12",
        "keys": list(keys),
        "command": "x",
        "num_steps": [600],
        "bench_seed": 0,
        "runs": runs,
        "run_minutes": 1.0,
        "machine": {"cpus": 2, "note": "typed by hand"},
    }
    table = ablation_report.proxy_markdown(payload)
    assert "| Full model" in table and "81.0 ± 1.0" in table
    # Paired by seed: full − concat = 0.10, 0.11, 0.09; full − visual = 0.01 every seed.
    concat = next(line for line in table.splitlines() if line.startswith("| Early concat"))
    assert "| +10.00 ± 1.00 |" in concat and "no claim (n = 3 < 5)" in concat
    visual = next(line for line in table.splitlines() if line.startswith("| Visual only"))
    assert "| +1.00 ± 0.00 | [+1.00, +1.00] |" in visual
    assert "2 std" not in table and "met:" not in table
    # A hand-written machine note is shown as such, not as a measurement.
    assert 'the note "typed by hand" was recorded by hand before this fix' in table


def test_machine_is_measured():
    load = ablation_report.load_average()
    machine = ablation_report.machine(load)
    assert machine["measured"] is True and "note" not in machine
    assert machine["cpus"] == os.cpu_count() and machine["usable_cpus"] >= 1
    assert machine["load_average_start"] == load and len(machine["load_average_end"]) == 3
    assert machine["cpu_model"]
    text = ablation_report.machine_text(machine)
    assert text.startswith("Machine (measured): ") and "by hand" not in text


def test_snippet_regions_split_action_context_and_far():
    # 10 snippets over 10 s (centres 0.5 .. 9.5); one action [4, 6), context band 2 s.
    regions = reliability_regions.snippet_regions(10.0, 10, np.array([[4.0, 6.0]]), 2.0)
    assert np.flatnonzero(regions["action"]).tolist() == [4, 5]
    assert np.flatnonzero(regions["context"]).tolist() == [2, 3, 6, 7]
    assert np.flatnonzero(regions["far"]).tolist() == [0, 1, 8, 9]
    none = reliability_regions.snippet_regions(10.0, 10, np.zeros((0, 2)), 2.0)
    assert none["far"].all() and not none["action"].any()
