"""The ablation study's variant table and summaries, and the μ-region diagnostic."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
ablations = importlib.import_module("ablations")
reliability_regions = importlib.import_module("reliability_regions")


@pytest.mark.parametrize("flavour", ["activitynet12", "ave"])
def test_every_variant_override_names_an_existing_config_key(flavour):
    config = importlib.import_module(f"configs.benchmark_{flavour}").get_config()
    for variant, (_, overrides) in ablations.VARIANTS.items():
        for dotted, value in overrides.items():
            node = config
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node[key]
            assert leaf in node, f"{variant}: {dotted} is not a config key"
            assert type(node[leaf]) is type(value) or isinstance(value, (int, float)), (
                variant,
                dotted,
            )
    for group, members in ablations.GROUPS.items():
        assert set(members) <= set(ablations.VARIANTS), group
    assert set(ablations.BASELINES) <= set(ablations.GROUPS["core"])


def test_summary_and_table_report_mean_std_and_the_two_std_verdict():
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
    summary = ablations.summarise(runs, keys)
    assert summary["full"]["average_mAP"][0] == pytest.approx(0.81)
    assert summary["full"]["average_mAP"][1] == pytest.approx(np.std([0.80, 0.82, 0.81]))
    payload = {
        "command": "x",
        "num_steps": [600],
        "bench_seed": 0,
        "runs": runs,
        "run_minutes": 1.0,
        "machine": {"cpus": 2},
    }
    table = ablations.markdown_table("activitynet12", summary, keys, payload)
    assert "| Full model" in table and "81.0 ± 0.8" in table
    assert "full − concat: +10.0 (larger std 0.8); met: yes" in table
    assert "full − visual: +1.0 (larger std 0.8); met: **no**" in table
    assert "full_1k" not in table  # no longer-training rows, no such verdicts


def test_snippet_regions_split_action_context_and_far():
    # 10 snippets over 10 s (centres 0.5 .. 9.5); one action [4, 6), context band 2 s.
    regions = reliability_regions.snippet_regions(10.0, 10, np.array([[4.0, 6.0]]), 2.0)
    assert np.flatnonzero(regions["action"]).tolist() == [4, 5]
    assert np.flatnonzero(regions["context"]).tolist() == [2, 3, 6, 7]
    assert np.flatnonzero(regions["far"]).tolist() == [0, 1, 8, 9]
    none = reliability_regions.snippet_regions(10.0, 10, np.zeros((0, 2)), 2.0)
    assert none["far"].all() and not none["action"].any()
