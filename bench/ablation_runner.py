"""Runs an ablation grid (bench/ablation_grids.py): data once, every row × seed, the
report rewritten after every run.

Each (row, seed) trains in-process with `train.train_and_evaluate` in
``<work>/runs/<tag>/<row>/seed<seed>``. A finished run is read back when the command is
run again (an interrupted study resumes) and only if its resolved config is the same
(`config_hash`); a row whose resolved config equals another row's reuses that row's runs
and says so (`same_config_as`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ablation_report as report  # noqa: E402
from ablation_grids import CONDITIONS, REPO, Grid  # noqa: E402
from ablation_resolve import (  # noqa: E402
    benchmark_flavour,
    config_hash,
    config_path,
    load_config_file,
    report_tag,
    resolve_config,
    score_keys,
    with_references,
)

from avloc_jax.common import io  # noqa: E402  (atomic writes; imports nothing heavy)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where a grid runs and writes; none of it changes what a run computes."""

    work: Path  # benchmark files, TFDS data and run workdirs
    out: Path | None  # "report" output (default <work>/reports)
    docs: Path  # "docs" output: docs/results_<flavour>.json and docs/results.md
    annotations: str | None  # the real annotations the benchmark is drawn on
    command: str  # the command line, as the report records it


def prepare_data(
    flavour: str,
    work: Path,
    bench_seed: int,
    annotations: str | None,
    quick: bool,
    *,
    condition: str = "default",
    builder_config: str | None = None,
) -> Path:
    """make-benchmark + build-data once; returns the TFDS data dir. `condition` names a
    pre-registered benchmark condition (CONDITIONS); `builder_config` the TFDS build
    (default: AVE's weak setting, as configs/benchmark_ave.py, else "default")."""
    from avloc_jax.benchmark import generator as benchmark
    from tfds_builders import build as build_data

    if builder_config is None:
        builder_config = "weak" if flavour == "ave" else "default"
    tag = f"{flavour}_s{bench_seed}{'_quick' if quick else ''}"
    if condition != "default":
        tag += f"_{condition}"
    if flavour == "ave" and builder_config != "weak":
        tag += f"_{builder_config}"
    src, data = work / f"src_{tag}", work / f"data_{tag}"
    config = benchmark.default_config(flavour)
    config.update(CONDITIONS[condition])
    if quick:
        if flavour == "activitynet12":
            config.num_train, config.num_test = 120, 60
        else:
            config.num_train, config.num_val, config.num_test, config.num_noisy = 400, 100, 100, 20
    if not (src / "benchmark.json").is_file():
        benchmark.make_benchmark(
            flavour, src, annotations=annotations, config=config, seed=bench_seed, overwrite=True
        )
    if not (data / flavour / builder_config / "1.0.0" / "dataset_info.json").is_file():
        build_data.build(
            flavour, data, builder_config=builder_config, manual_dir=src, overwrite=True
        )
    return data


def _data(grid: Grid, config, runtime: Runtime) -> tuple[Path, str]:
    """(TFDS data dir, how the report names it): the user's build, or the benchmark of
    the config's flavour (built once under --work)."""
    if grid.data_dir is not None:
        data = Path(grid.data_dir).expanduser()
        return data, f"the user's `{config.data.name}` build in `{data}`"
    flavour = benchmark_flavour(config)
    builder_config = None
    if flavour == "ave":
        builder_config = "weak" if config.data.weak_setting else "default"
    data = prepare_data(
        flavour, runtime.work, grid.bench_seed, runtime.annotations, grid.quick,
        condition=grid.condition, builder_config=builder_config,
    )  # fmt: skip
    text = (
        f"the `{flavour}` benchmark (seed {grid.bench_seed}, condition `{grid.condition}`"
        f"{', quick' if grid.quick else ''})"
    )
    return data, text


def run_variant(
    grid: Grid, variant: str, seed: int, data_dir: Path, runs: Path, done_by_hash: dict
) -> dict:
    """One (row, seed) run in runs/<row>/seed<seed> (see the module docstring)."""
    from avloc_jax.engine import train

    config, scaled, fixed = resolve_config(grid, variant, seed, data_dir)
    digest = config_hash(config)
    workdir = runs / variant / f"seed{seed}"
    done = workdir / "ablation_result.json"
    base = {
        "variant": variant,
        "seed": seed,
        "overrides": dict(grid.catalogue.variants[variant].overrides),
        "scaled": scaled,
        "fixed": {k: v for k, v in fixed.items() if k != "data.data_dir"},
        "config_hash": digest,
    }
    if done.is_file():
        result = json.loads(done.read_text())
        if result.get("config_hash") == digest:
            done_by_hash.setdefault(digest, result)
            return result
    if digest in done_by_hash:
        twin = done_by_hash[digest]
        return {**twin, **base, "same_config_as": twin["variant"], "seconds": 0.0}
    if workdir.exists():  # unfinished, or trained with another config: from scratch
        shutil.rmtree(workdir)
    start = time.perf_counter()
    outcome = train.train_and_evaluate(config, workdir)
    result = {
        **base,
        "num_steps": int(config.train.num_steps),
        "batch_size": int(config.train.batch_size),
        "best_step": outcome.best_step,
        "seconds": round(time.perf_counter() - start, 1),
        "run_environment": report.run_environment(),
        "val": outcome.val,
        "test": outcome.test,
    }
    io.atomic_write_json(done, result)
    done_by_hash[digest] = result
    return result


def run_grid(grid: Grid, runtime: Runtime) -> int:
    """Trains every row × seed of a checked grid (`check_grid`), rewriting its output
    after every run; prints the table at the end."""
    config = load_config_file(config_path(grid))
    keys = score_keys(grid, config)
    load_at_start = report.load_average()
    runtime.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data, data_text = _data(grid, config, runtime)
    print(f"data ready in {time.perf_counter() - started:.0f} s: {data}", flush=True)
    tag = report_tag(grid)
    docs_output = grid.catalogue.output == "docs"
    flavour = benchmark_flavour(config)
    before = report.read_docs(runtime.docs, flavour) if docs_output and not grid.quick else {}
    variants = with_references(grid, before.get("runs", []))
    results = [
        r
        for r in before.get("runs", [])
        if not (r["variant"] in variants and r["seed"] in grid.seeds)
    ]
    path = config_path(grid)
    common = {
        "command": runtime.command,
        "bench_seed": grid.bench_seed,
        "config": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
        "data_text": data_text,
        "data_dir": str(data),
    }
    out = runtime.out or runtime.work / "reports"
    done_by_hash: dict[str, dict] = {}
    payload: dict = {}
    for variant in variants:
        for seed in grid.seeds:
            r = run_variant(grid, variant, seed, data, runtime.work / "runs" / tag, done_by_hash)
            results.append(r)
            twin = f", the runs of {r['same_config_as']}" if r.get("same_config_as") else ""
            print(
                f"{variant:16s} seed {seed}: test {keys[0]} {r['test'][keys[0]]:.4f} "
                f"({r['seconds']:.0f} s{twin})",
                flush=True,
            )
            common["machine"] = report.machine(load_at_start)
            if docs_output:
                payload = report.proxy_payload(flavour, keys, results, before, common)
                if not grid.quick:
                    report.write_docs(runtime.docs, flavour, payload, grid.delta)
            else:
                payload = report.report_payload(grid, config, keys, results, common)
                report.write_report(out, tag, payload, grid.delta)
    if docs_output:
        print(report.proxy_markdown(payload, grid.delta))
        if not grid.quick:
            print(f"wrote {runtime.docs / f'results_{flavour}.json'} and its table in results.md")
    else:
        print(report.shipped_markdown(payload, grid.delta))
        print(f"wrote {out / f'ablation_{tag}.json'} and .md")
    return 0
