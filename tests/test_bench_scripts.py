"""The ablation study's variant table and summaries, and the μ-region diagnostic."""

import ast
import importlib
import json
import os
import subprocess
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
bench_machine = importlib.import_module("machine")  # bench/machine.py


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
    load = bench_machine.load_average()
    machine = ablation_report.machine(load)
    assert tuple(machine)[: len(bench_machine.KEYS)] == bench_machine.KEYS
    assert machine["measured"] is True and "note" not in machine
    assert machine["cpus"] == os.cpu_count() and machine["usable_cpus"] >= 1
    assert machine["load_average_start"] == load and len(machine["load_average_end"]) == 3
    assert machine["jax"] and machine["devices"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # the model, not `platform.processor()` (empty on Linux)
        assert machine["cpu_model"] and machine["cpu_model"] in cpuinfo.read_text()
    text = ablation_report.machine_text(machine)
    assert text.startswith("Machine (measured): ") and "by hand" not in text


# Calls that describe the machine: only bench/machine.py makes them.
MACHINE_CALLS = {
    ("os", "getloadavg"),
    ("os", "cpu_count"),
    ("os", "sched_getaffinity"),
    ("platform", "platform"),
    ("platform", "processor"),
    ("platform", "machine"),
    ("platform", "python_version"),
}


def test_every_bench_script_takes_its_machine_from_bench_machine():
    """No bench script describes the machine by hand: none calls os.getloadavg,
    platform.platform & co. (bench/machine.py does), and every JSON "machine" a script
    builds is a call, in a script that imports `describe` and `load_average` (the load
    read before its timings) from bench/machine.py. A "machine" copied from a measured
    payload (`payload["machine"]`) is not built."""
    builders = set()
    for path in sorted(BENCH.glob("*.py")):
        if path.name == "machine.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        calls = {
            (node.func.value.id, node.func.attr)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        }
        by_hand = sorted(calls & MACHINE_CALLS)
        assert not by_hand, (path.name, by_hand)
        built = [
            value
            for node in ast.walk(tree)
            if isinstance(node, ast.Dict)
            for key, value in zip(node.keys, node.values)
            if isinstance(key, ast.Constant) and key.value == "machine"
            if not isinstance(value, ast.Subscript)
        ]
        if not built:
            continue
        builders.add(path.stem)
        assert all(isinstance(value, ast.Call) for value in built), path.name
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "machine"
            for alias in node.names
        }
        assert {"describe", "load_average"} <= imported, path.name
    # The check is not vacuous: these are the scripts that write a machine.
    assert builders == {
        "eval_speed",
        "extract_speed",
        "i3d_profile",
        "reliability_regions",
        "train_throughput",
    }


def _assert_described(machine: dict, load_at_start: list[float] | None) -> None:
    assert tuple(machine)[: len(bench_machine.KEYS)] == bench_machine.KEYS
    assert machine["measured"] is True and machine["cpu_model"]
    assert machine["load_average_start"] == load_at_start
    assert len(machine["load_average_end"]) == 3


def test_the_load_at_the_end_is_read_when_the_machine_is_described():
    start = [99.5, 98.5, 97.5]  # not this machine's load
    machine = bench_machine.describe(start)
    _assert_described(machine, start)
    assert machine["load_average_end"] != start and "jax" not in machine
    # The cores this process may use, not the machine's: pinned to one core, it says 1.
    code = (
        "import os, machine; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "print(machine.describe(None)['usable_cpus'])"
    )
    pinned = subprocess.run(
        [sys.executable, "-c", code], cwd=BENCH, capture_output=True, text=True, check=True,
        timeout=60,
    )  # fmt: skip
    assert pinned.stdout.strip() == "1"


def test_jax_bench_scripts_describe_the_machine_with_their_own_fields():
    """extract_speed and train_throughput: bench/machine.py's description (with JAX) and
    each script's own fields after it."""
    extract_speed = importlib.import_module("extract_speed")
    train_throughput = importlib.import_module("train_throughput")
    load = [99.5, 98.5, 97.5]  # what the script read before its timings (not this machine's)
    extract = extract_speed.machine(load)
    _assert_described(extract, load)
    assert extract["jax"] and extract["devices"] and extract["pyav"] and extract["ffmpeg"]
    train = train_throughput.machine_info(load)
    _assert_described(train, load)
    assert train["backend"] == "cpu" and train["device_count"] == len(train["devices"])


def test_eval_speed_records_the_load_at_the_start_and_end_of_its_timings(tmp_path):
    """The fastest run of bench/eval_speed.py (synthetic GT, one repeat; NumPy only, in a
    subprocess since the script pins NumPy's threads at import): its JSON's machine is
    bench/machine.py's with the NumPy fields, and its docs sentence quotes the CPU model
    and the load at the start and end."""
    docs = tmp_path / "performance.md"
    run = subprocess.run(
        [sys.executable, str(BENCH / "eval_speed.py"), "--synthetic", "--repeats", "1",
         "--write-docs", str(docs)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    machine = json.loads(run.stdout)["machine"]
    assert machine["load_average_start"] is not None  # Linux has a load average
    _assert_described(machine, machine["load_average_start"])
    assert list(machine)[len(bench_machine.KEYS) :] == ["numpy", "numpy_threads"]
    assert machine["numpy_threads"] == "1"
    text = docs.read_text()
    start, end = (
        "/".join(f"{v:.2f}" for v in machine[k]) for k in ("load_average_start", "load_average_end")
    )
    assert f"({machine['cpu_model']}, {machine['cpus']} CPUs" in text
    assert f"started → ended: {start} → {end})" in text


def test_snippet_regions_split_action_context_and_far():
    # 10 snippets over 10 s (centres 0.5 .. 9.5); one action [4, 6), context band 2 s.
    regions = reliability_regions.snippet_regions(10.0, 10, np.array([[4.0, 6.0]]), 2.0)
    assert np.flatnonzero(regions["action"]).tolist() == [4, 5]
    assert np.flatnonzero(regions["context"]).tolist() == [2, 3, 6, 7]
    assert np.flatnonzero(regions["far"]).tolist() == [0, 1, 8, 9]
    none = reliability_regions.snippet_regions(10.0, 10, np.zeros((0, 2)), 2.0)
    assert none["far"].all() and not none["action"].any()
