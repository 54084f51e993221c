"""The ablation grids: what each study trains, declared once (`bench/ablations.py` runs them).

A `Grid` is one study: the config file it ablates, its rows (variants of a `Catalogue`,
each a label and config overrides), seeds, step budget and batch size, the benchmark
condition or the user's data, Δ (the minimum effect of interest of every verdict) and,
for the studies written down before their runs, that `Rule`. `GRIDS` names the studies
behind docs/results.md; `bench/ablations.py --config/--flavour ...` builds the same kind
of `Grid` from its flags. `check_grid` refuses a grid with one line (an unknown row, a
typo'd config key, a bad value) before anything is built or written; `resolve_config`
is the one place a row's config is made.

Two catalogues, because two studies were run: `SHIPPED` ablates the configs users run
(configs/activitynet12.py, ave.py, thumos14.py) with only the step budget and batch size
scaled; `PROXY` the benchmark configs (configs/benchmark_<flavour>.py) of the earlier
study, whose table lives in docs/results.md.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avloc_jax.benchmark import stats  # noqa: E402  (numpy and scipy only)
from configs import paper  # noqa: E402  (its OVERRIDES: a dict, nothing heavy)


class GridError(ValueError):
    """A grid that cannot run, in one line."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row: its table label, its config overrides, and the row it is paired with."""

    label: str
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reference: str = "full"


@dataclasses.dataclass(frozen=True)
class Quick:
    """`--quick`, a smoke run: the first `seeds` seeds, `steps` steps unless --steps says
    otherwise, these overrides, and a small benchmark; the docs are not written."""

    seeds: int
    steps: int
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """The rows one study draws from, and how it trains and reports them.

    `scale_intervals`: a step budget also scales the evaluation and checkpoint intervals
    (as many evaluations as the config's own run). `benchmark_fixed`: keys set on the
    benchmark (the protocol's validation share). `output`: "report" writes
    ablation_<tag>.json/.md into --out; "docs" keeps docs/results_<flavour>.json and its
    table in docs/results.md."""

    name: str
    variants: dict[str, Variant]
    groups: dict[str, tuple[str, ...]]
    default_group: str
    default_seeds: tuple[int, ...]
    keys: Mapping[str, tuple[str, ...]]  # "detection" | "ave" -> score keys, first decides
    scale_intervals: bool
    benchmark_fixed: Mapping[str, Any]
    quick: Quick
    output: str


@dataclasses.dataclass(frozen=True)
class Rule:
    """The decision written down before the runs: where, and the comparisons it predicts.
    Each (a, b) predicts a − b supported (a ahead) on the first score key; ruled out or b
    ahead refutes it, inconclusive refutes nothing (docs/benchmark.md)."""

    written: str
    predictions: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Grid:
    """One study (see the module docstring). `steps`/`batch_size` None: as the config
    ships. `data_dir` None: the benchmark of the config's flavour under `condition`."""

    catalogue: Catalogue
    config: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int | None = None
    batch_size: int | None = None
    condition: str = "default"
    bench_seed: int = 0
    data_dir: str | None = None
    delta: float = stats.DEFAULT_DELTA
    tolerance: float = 0.01
    quick: bool = False
    name: str | None = None
    rule: Rule | None = None

    def quickened(self) -> Grid:
        """The smoke-run version of this grid (`Quick`)."""
        q = self.catalogue.quick
        return dataclasses.replace(
            self, quick=True, seeds=self.seeds[: q.seeds], steps=self.steps or q.steps
        )


# ----------------------------------------------------------------------------- proxy rows
# The full model of configs/benchmark_<flavour>.py: 2 cross-attention stages, dense skip,
# no merge non-linearity, zero-initialised attention gates, attention window ±1, open-max
# head, every loss (docs/method.md).
PROXY_VARIANTS: dict[str, Variant] = {
    "full": Variant(
        "Full model (cross-attention: 2 stages, dense skip, gated, window ±1; open-max)"
    ),
    "visual": Variant("Visual only", {"model.fusion": "visual"}),
    "audio": Variant("Audio only", {"model.fusion": "audio"}),
    "concat": Variant("Early concatenation (no cross-attention)", {"model.fusion": "concat"}),
    "stages1": Variant("1 stage", {"model.num_stages": 1}),
    "stages3": Variant("3 stages", {"model.num_stages": 3}),
    "stages4": Variant("4 stages", {"model.num_stages": 4}),
    "skip_residual": Variant("Residual skip", {"model.skip": "residual"}),
    "skip_none": Variant("No skip", {"model.skip": "none"}),
    "merge_layernorm": Variant("LayerNorm merge", {"model.merge": "layernorm"}),
    "merge_tanh": Variant("tanh merge", {"model.merge": "tanh"}),
    "no_gate": Variant(
        "Ungated attention (gate fixed open, as the paper's equations)",
        {"model.attention_gate": False},
    ),
    "no_gate_layernorm": Variant(
        "Ungated attention + LayerNorm merge (this project's first full model)",
        {"model.attention_gate": False, "model.merge": "layernorm"},
    ),
    "gate_frozen": Variant(
        "Control: gate held at 0 (same streams, scale and head; no attention)",
        {"model.attention_gate_frozen": True},
    ),
    "attn_global": Variant("Global attention", {"model.attention_window": 0}),
    "attn_window4": Variant("Attention window ±4", {"model.attention_window": 4}),
    "distance_bias": Variant(
        "Global attention + learned distance bias",
        {"model.attention_window": 0, "model.distance_bias": True},
    ),
    "softmax_bg": Variant(
        "Closed-set softmax with a background class", {"model.head": "softmax_bg"}
    ),
    "no_fg": Variant("without L_fg", {"loss.fg_weight": 0.0}),
    "no_rel": Variant("without L_rel", {"loss.rel_weight": 0.0}),
    "no_cc": Variant("without class consistency", {"loss.class_consistency_weight": 0.0}),
    "no_rc": Variant(
        "without reliability consistency", {"loss.reliability_consistency_weight": 0.0}
    ),
    "rule_class_argmax": Variant(
        "class_argmax pseudo-label rule (METHOD_NOTES)", {"loss.pseudo_label_rule": "class_argmax"}
    ),
    "rel_bg0": Variant("L_rel without its bottom-k term", {"loss.rel_background_weight": 0.0}),
    "rel_bg1": Variant(
        "L_rel with a full-weight bottom-k term (METHOD_NOTES)", {"loss.rel_background_weight": 1.0}
    ),
    "cas_smooth": Variant(
        "Full + CAS smoothing (5) in post-processing", {"localization.cas_smoothing": 5}
    ),
    # Longer training (the 600-step default is sized for the CPU budget; docs/results.md),
    # each paired with the full model trained as long.
    "full_1k": Variant("Full model, 1000 steps", {"train.num_steps": 1000}, reference="full_1k"),
    "visual_1k": Variant(
        "Visual only, 1000 steps",
        {"model.fusion": "visual", "train.num_steps": 1000},
        reference="full_1k",
    ),
    "audio_1k": Variant(
        "Audio only, 1000 steps",
        {"model.fusion": "audio", "train.num_steps": 1000},
        reference="full_1k",
    ),
    "concat_1k": Variant(
        "Early concatenation, 1000 steps",
        {"model.fusion": "concat", "train.num_steps": 1000},
        reference="full_1k",
    ),
}
_CORE = ("full", "visual", "audio", "concat", "softmax_bg", "no_fg", "no_rel", "no_cc",
         "no_rc", "no_gate", "gate_frozen")  # fmt: skip
_LONGER = ("full_1k", "visual_1k", "audio_1k", "concat_1k")
PROXY = Catalogue(
    name="proxy",
    variants=PROXY_VARIANTS,
    groups={
        "core": _CORE,
        # The paper's ablation grid at the default 600 steps (< 60 min on 2 cores).
        "grid": tuple(v for v in PROXY_VARIANTS if v not in _LONGER),
        # The AVE-style grid that was run: fusion, gate/merge, attention range, head and
        # loss rows (CAS smoothing only affects detection; stages and skip were not run).
        "grid_ave": _CORE
        + ("no_gate_layernorm", "merge_layernorm", "attn_global", "rule_class_argmax", "rel_bg1"),
        "longer": _LONGER,
        "all": tuple(PROXY_VARIANTS),
    },
    default_group="core",
    default_seeds=(0, 1, 2),
    keys={
        "detection": ("average_mAP", "mAP@0.50", "mAP@0.75"),
        "ave": ("accuracy", "accuracy_ungated"),
    },
    scale_intervals=False,
    benchmark_fixed={},
    quick=Quick(
        seeds=1,
        steps=100,
        overrides={
            "eval.every_steps": 50,
            "train.checkpoint_every_steps": 50,
            "loss.consistency_warmup_steps": 50,
        },
    ),  # fmt: skip
    output="docs",
)

# --------------------------------------------------------------------------- shipped rows
# Rows whose resolved config equals another row's (e.g. window4 on
# configs/activitynet12.py, which ships ±4) are not trained twice: they reuse its runs.
SHIPPED_VARIANTS: dict[str, Variant] = {
    "full": Variant("Full model, as shipped"),
    "gate0": Variant(
        "Gate held at 0 (same streams, scale and head; no attention)",
        {"model.attention_gate_frozen": True},
    ),
    "concat": Variant("Early concatenation", {"model.fusion": "concat"}),
    "visual": Variant("Visual only", {"model.fusion": "visual"}),
    "audio": Variant("Audio only", {"model.fusion": "audio"}),
    "window1": Variant("Attention window ±1", {"model.attention_window": 1}),
    "window4": Variant("Attention window ±4", {"model.attention_window": 4}),
    "window8": Variant("Attention window ±8", {"model.attention_window": 8}),
    "window0": Variant("Global attention", {"model.attention_window": 0}),
    "embed64": Variant("Embedding d = 64", {"model.embed_dim": 64}),
    "embed256": Variant("Embedding d = 256", {"model.embed_dim": 256}),
    "stages1": Variant("1 stage", {"model.num_stages": 1}),
    "stages2": Variant("2 stages", {"model.num_stages": 2}),
    "stages3": Variant("3 stages", {"model.num_stages": 3}),
    "paper": Variant(
        "METHOD_NOTES as written (configs/paper.py: ungated, LayerNorm merge, "
        "class_argmax, full bottom-k L_rel)",
        paper.OVERRIDES,
    ),
    "softmax_bg": Variant(
        "Closed-set softmax with a background class", {"model.head": "softmax_bg"}
    ),
    # The scale confound removed: the same LayerNorm in front of the head for every fusion.
    "full_headnorm": Variant("Full model + head LayerNorm", {"model.head_norm": "layernorm"}),
    "gate0_headnorm": Variant(
        "Gate held at 0 + head LayerNorm",
        {"model.attention_gate_frozen": True, "model.head_norm": "layernorm"},
    ),
    "concat_headnorm": Variant(
        "Early concatenation + head LayerNorm",
        {"model.fusion": "concat", "model.head_norm": "layernorm"},
    ),
    # A determinism check: trains exactly as full (a CAS smoothing window of 1 is no
    # smoothing), so its paired difference must be 0.
    "full_repeat": Variant(
        "Full model again (determinism check)", {"localization.cas_smoothing": 1}
    ),
}
# docs/benchmark.md's protocol: 15 % of the benchmark's training videos pick checkpoints.
BENCHMARK_VAL_FRACTION = 0.15
SHIPPED = Catalogue(
    name="shipped",
    variants=SHIPPED_VARIANTS,
    groups={
        "shipped": (
            "full",
            "gate0",
            "concat",
            "visual",
            "audio",
            "window1",
            "window4",
            "window8",
            "window0",
            "embed64",
            "embed256",
            "stages1",
            "stages2",
            "stages3",
            "paper",
        ),
        # The paper's ablation table (METHOD_NOTES §2.5: the baselines in the same code
        # path, the number of stages) and the notes' own model.
        "paper_table": (
            "full",
            "visual",
            "audio",
            "concat",
            "softmax_bg",
            "stages1",
            "stages3",
            "paper",
        ),
        # The pre-registered conditions' comparison (docs/benchmark.md).
        "conditions": ("full", "gate0", "full_headnorm", "gate0_headnorm", "concat"),
        "head_norm": (
            "full",
            "gate0",
            "concat",
            "full_headnorm",
            "gate0_headnorm",
            "concat_headnorm",
        ),
    },  # fmt: skip
    default_group="shipped",
    default_seeds=(0, 1, 2, 3, 4),
    keys={
        "detection": ("average_mAP", "mAP@0.50", "mAP@0.75", "mAP@0.95"),
        "ave": ("accuracy", "accuracy_ungated"),
    },
    scale_intervals=True,
    benchmark_fixed={"data.val_fraction": BENCHMARK_VAL_FRACTION},
    quick=Quick(seeds=2, steps=100),
    output="report",
)

# docs/benchmark.md, "Pre-registered conditions": make-benchmark parameters per condition.
CONDITIONS: dict[str, dict] = {
    "default": {},
    "segment_offsets": {"segment_misalignment_seconds": 2.0},
    "sparse_audio": {"audio_cue_fraction": 0.25},
    "silent_stretches": {"silent_stretch_prob": 0.5, "stretch_fraction": 0.3},
    "occluded_stretches": {"occluded_stretch_prob": 0.5, "stretch_fraction": 0.3},
    "music": {"music_probability": 1.0},
    # The harder condition (docs/benchmark.md, "A harder condition"), fixed before any run;
    # the occluded-stretch probability 0.5 -> 0.25 by its calibration rule (pilot: 24.7).
    "sparse_occluded": {
        "audio_cue_fraction": 0.25,
        "occluded_stretch_prob": 0.25,
        "stretch_fraction": 0.3,
    },
}
# METHOD_NOTES §7: the paper's ActivityNet1.2 row (as listed in a public WTAL survey).
PUBLISHED = {
    "activitynet12": {
        "source": "Lee et al. (ICLR 2021), ActivityNet1.2, METHOD_NOTES §7",
        "metrics": {"mAP@0.50": 0.448, "mAP@0.75": 0.267, "mAP@0.95": 0.010, "average_mAP": 0.260},
    },
}


# ---------------------------------------------------------------------------- named grids
def select(catalogue: Catalogue, spec: str | None) -> tuple[str, ...]:
    """A group of `catalogue` or a comma list of its rows (unknown rows are left for
    `check_grid` to refuse); None: the default group."""
    spec = spec or catalogue.default_group
    if spec in catalogue.groups:
        return catalogue.groups[spec]
    return tuple(v.strip() for v in spec.split(",") if v.strip())


_ANET = "configs/activitynet12.py"
_FIVE = (0, 1, 2, 3, 4)
_CONDITIONS_RULE = (
    'docs/benchmark.md, "Pre-registered conditions" (commit 23982f4, before the runs); '
    'judged by "How results are judged", which replaced the d̄ > 2·sd criterion written '
    "then after the results were seen"
)
GRIDS: dict[str, Grid] = {
    # The shipped ActivityNet config at 1000 steps × 16 on the benchmark: every fusion row
    # on the default condition, full and gate-0 under each pre-registered condition.
    "anet_default_1000": Grid(
        SHIPPED, _ANET, SHIPPED.groups["head_norm"], _FIVE, steps=1000, batch_size=16
    ),
    **{
        f"anet_{c}_1000": Grid(
            SHIPPED,
            _ANET,
            ("full", "gate0"),
            _FIVE,
            steps=1000,
            batch_size=16,
            condition=c,
            rule=Rule(_CONDITIONS_RULE, (("full", "gate0"),)),
        )  # fmt: skip
        for c in (
            "segment_offsets",
            "sparse_audio",
            "silent_stretches",
            "occluded_stretches",
            "music",
        )
    },  # fmt: skip
    "anet_default_300": Grid(
        SHIPPED,
        _ANET,
        ("full", "visual", "audio", "paper", "window0", "stages1", "embed64"),
        _FIVE,
        steps=300,
        batch_size=16,
    ),  # fmt: skip
    "anet_sparse_occluded_500": Grid(
        SHIPPED,
        _ANET,
        ("full", "gate0", "concat", "visual", "audio"),
        _FIVE,
        steps=500,
        batch_size=16,
        condition="sparse_occluded",
        rule=Rule(
            'docs/benchmark.md, "A harder condition" (written before any run of it)',
            (("full", "gate0"), ("full", "concat"), ("full", "visual"), ("full", "audio")),
        ),
    ),  # fmt: skip
    "ave_default_500": Grid(
        SHIPPED,
        "configs/ave.py",
        ("full", "gate0", "concat", "paper"),
        _FIVE,
        steps=500,
        batch_size=64,
    ),  # fmt: skip
    # The earlier proxy study (docs/results.md, "Earlier study"), 3 seeds.
    "proxy_activitynet12": Grid(
        PROXY, "configs/benchmark_activitynet12.py", PROXY.groups["grid"], (0, 1, 2)
    ),
    "proxy_activitynet12_longer": Grid(
        PROXY, "configs/benchmark_activitynet12.py", PROXY.groups["longer"], (0, 1, 2)
    ),
    "proxy_ave": Grid(PROXY, "configs/benchmark_ave.py", PROXY.groups["grid_ave"], (0, 1, 2)),
}
GRIDS = {name: dataclasses.replace(grid, name=name) for name, grid in GRIDS.items()}
