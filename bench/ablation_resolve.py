"""What an ablation grid (bench/ablation_grids.py) resolves to, and its check.

`resolve_config` is the one place a row's config is made (the grid's config file, what
running it fixes, the budget, the row's overrides); `config_hash` fingerprints it,
`report_tag` names the study's report and runs, `with_references` adds the rows the
others are paired with, and `check_grid` refuses a grid that cannot run with one line
before anything is built or written.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation_grids import CONDITIONS, REPO, Grid, GridError  # noqa: E402


def config_path(grid: Grid) -> Path:
    """The grid's config file: as given, else relative to the repository."""
    path = Path(grid.config).expanduser()
    if not path.is_file() and (REPO / path).is_file():
        path = REPO / path
    return path


def load_config_file(path: str | Path):
    """`get_config()` of a config file (e.g. configs/activitynet12.py), by path."""
    path = Path(path).resolve()
    if path.parent == REPO / "configs":  # a shipped config: import it as configs.<name>
        return importlib.import_module(f"configs.{path.stem}").get_config()
    spec = importlib.util.spec_from_file_location(f"_avloc_config_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load a config from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def benchmark_flavour(config) -> str:
    """The benchmark a config runs on: AVE's for AVE, ActivityNet's for the others."""
    return "ave" if config.data.name == "ave" else "activitynet12"


def score_keys(grid: Grid, config) -> tuple[str, ...]:
    """The scores a grid reports; the first decides every verdict."""
    return grid.catalogue.keys["ave" if config.data.name == "ave" else "detection"]


def scaled_keys(config, grid: Grid) -> dict[str, list[int]]:
    """{key: [the config's value, value used]} for the step budget and the batch size;
    with the catalogue's `scale_intervals` the evaluation and checkpoint intervals scale
    with the steps (as many evaluations as the config's own run). Nothing else changes."""
    scaled: dict[str, list[int]] = {}
    if grid.steps:
        config_steps = int(config.train.num_steps)
        scaled["train.num_steps"] = [config_steps, grid.steps]
        if grid.catalogue.scale_intervals:
            for key in ("eval.every_steps", "train.checkpoint_every_steps"):
                section, leaf = key.split(".")
                value = int(config[section][leaf])
                scaled[key] = [value, max(1, round(value * grid.steps / config_steps))]
    if grid.batch_size:
        scaled["train.batch_size"] = [int(config.train.batch_size), grid.batch_size]
    return scaled


def resolve_config(grid: Grid, variant: str, seed: int, data_dir: str | Path):
    """(config, scaled, fixed): the grid's config with, in this order, what running it
    fixes (data dir, seed; on the benchmark the protocol's keys and the data format's
    name, e.g. thumos14's config on the ActivityNet-format benchmark), the budget
    (`scaled_keys`), the quick run's keys, and the row's overrides. Raises ConfigError
    (one line) on an unknown key or a bad value."""
    from avloc_jax.common.config_overrides import apply_overrides

    config = load_config_file(config_path(grid))
    scaled = scaled_keys(config, grid)
    fixed: dict[str, Any] = {"data.data_dir": str(data_dir), "seed": seed}
    if grid.data_dir is None:  # on the benchmark (docs/benchmark.md, "Protocol")
        fixed.update(grid.catalogue.benchmark_fixed)
        if benchmark_flavour(config) != config.data.name:
            fixed["data.name"] = benchmark_flavour(config)
    overrides = {**fixed, **{k: v[1] for k, v in scaled.items()}}
    if grid.quick:
        overrides.update(grid.catalogue.quick.overrides)
    overrides.update(grid.catalogue.variants[variant].overrides)
    apply_overrides(config, overrides)
    return config, scaled, fixed


def config_hash(config) -> str:
    """A resolved config's fingerprint: equal hashes train the same run."""
    return hashlib.sha256(config.to_json_best_effort(sort_keys=True).encode()).hexdigest()[:16]


def report_tag(grid: Grid) -> str:
    """The name of a grid's study: ablation_<tag>.json/.md, and its runs' folder."""
    stem = config_path(grid).stem
    if grid.data_dir is not None:
        resolved = str(Path(grid.data_dir).expanduser().resolve())
        source = "data_" + re.sub(r"[^A-Za-z0-9]+", "_", resolved).strip("_")[-40:]
    else:
        flavour = benchmark_flavour(load_config_file(config_path(grid)))
        source = f"bench_{flavour}_s{grid.bench_seed}_{grid.condition}"
        source += "_quick" if grid.quick else ""
    return f"{stem}_{source}_steps{grid.steps or 'shipped'}_b{grid.batch_size or 'shipped'}"


def with_references(grid: Grid, done: list[dict]) -> tuple[str, ...]:
    """The grid's rows, preceded by each row's reference (the row it is paired with)
    unless the grid has it or `done` (runs kept from before) has it for every seed."""
    have = {(r["variant"], r["seed"]) for r in done}
    missing = []
    for v in grid.variants:
        ref = grid.catalogue.variants[v].reference
        if ref in grid.variants or ref in missing:
            continue
        if not all((ref, s) in have for s in grid.seeds):
            missing.append(ref)
    return (*missing, *grid.variants)


def check_grid(grid: Grid) -> None:
    """Raises GridError (one line) unless every part of `grid` can run: known rows and
    condition, seeds, budget, Δ, the config file, and every row's config (its overrides
    name existing keys with valid values: `avloc_jax.schema.validate`, as training does)."""
    from avloc_jax.schema import ConfigError, validate  # the check every config passes

    where = f"grid `{grid.name}`: " if grid.name else ""
    catalogue = grid.catalogue
    unknown = [v for v in grid.variants if v not in catalogue.variants]
    if unknown:
        raise GridError(f"{where}unknown variants {unknown}; expected {list(catalogue.variants)}")
    if not grid.variants:
        raise GridError(f"{where}no variants")
    if not grid.seeds or len(set(grid.seeds)) != len(grid.seeds) or min(grid.seeds) < 0:
        raise GridError(f"{where}seeds {list(grid.seeds)}: expected distinct integers ≥ 0")
    for flag, value in (("--steps", grid.steps), ("--batch-size", grid.batch_size)):
        if value is not None and value < 1:
            raise GridError(f"{where}{flag} {value}: expected a positive integer")
    for flag, number in (("--delta", grid.delta), ("--tolerance", grid.tolerance)):
        if not number > 0:
            raise GridError(f"{where}{flag} {number}: expected a number > 0")
    if grid.condition not in CONDITIONS:
        raise GridError(f"{where}condition {grid.condition!r}: expected one of {list(CONDITIONS)}")
    if catalogue.output == "docs" and (
        grid.batch_size or grid.data_dir or grid.condition != "default"
    ):
        raise GridError(
            f"{where}the proxy study runs on the default benchmark at its config's batch "
            "size: --batch-size, --data-dir and --condition need --config"
        )
    if grid.data_dir is not None:
        if grid.condition != "default":
            raise GridError("--condition applies to the benchmark, not to --data-dir")
        if not Path(grid.data_dir).expanduser().is_dir():
            raise GridError(f"--data-dir {grid.data_dir}: not a folder")
    path = config_path(grid)
    if not path.is_file():
        raise GridError(f"{where}config file {grid.config}: not found")
    for variant in dict.fromkeys(with_references(grid, [])):
        try:
            config, _, _ = resolve_config(grid, variant, grid.seeds[0], grid.data_dir or "")
            validate(config)
        except ConfigError as err:
            raise GridError(f"{where}row `{variant}` on {grid.config}: {err}") from None
    if grid.rule:
        for a, b in grid.rule.predictions:
            if not {a, b} <= set(with_references(grid, [])):
                raise GridError(f"{where}the rule compares {a} and {b}, not both rows of the grid")
