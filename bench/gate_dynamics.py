"""Gate dynamics: how far the attention gates open over training (docs/results.md).

  python bench/gate_dynamics.py --out docs/figures/gate_dynamics.png [--json out.json] \\
      WORKDIR [WORKDIR ...]

Reads the ``gate/{audio,visual}_{stage}`` scalars (mean |g| of each per-channel gate,
logged with every train event by `avloc_jax.engine.state.gate_magnitudes`) from each
workdir's ``metrics.jsonl`` and draws one panel per modality: mean |g| against the step,
one line per stage and workdir. The gate is initialised to 0, so a line that stays near 0
means the attended term never entered the model. Headless (matplotlib's Agg canvas, as
avloc_jax/viz). Optionally writes the series as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avloc_jax.common import io  # noqa: E402  (atomic writes; imports nothing heavy)

GATE_KEY = re.compile(r"^gate/(audio|visual)_(\d+)$")
MODALITIES = ("audio", "visual")
FIGSIZE, DPI = (11.0, 4.5), 100  # 1100 x 450 px


def read_gate_series(workdir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """``gate/<modality>_<stage>`` -> [(step, mean |g|)] from the train events of a
    workdir's metrics.jsonl, in step order. Empty for a model without gates."""
    path = Path(workdir) / "metrics.jsonl"
    series: dict[str, dict[int, float]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        if event.get("event") != "train":
            continue
        for key, value in event.items():
            if GATE_KEY.match(key):
                series.setdefault(key, {})[int(event["step"])] = float(value)
    return {key: sorted(points.items()) for key, points in sorted(series.items())}


def plot_gate_series(runs: dict[str, dict[str, list[tuple[int, float]]]], out: Path | str) -> Path:
    """One panel per modality, one line per (run, stage), coloured by stage (the legend
    names the stages, and the runs when there are few); returns the PNG's path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(MODALITIES), sharey=True)
    for ax, modality in zip(axes, MODALITIES):
        seen: set[str] = set()
        for label, series in runs.items():
            for key, points in series.items():
                match = GATE_KEY.match(key)
                if match is None or match.group(1) != modality or not points:
                    continue
                stage = match.group(2)
                steps, values = zip(*points)
                if len(runs) <= 3:
                    name = f"{label}, stage {stage}"
                else:  # many runs (seeds): one legend entry per stage
                    name = f"stage {stage} ({len(runs)} runs)" if stage not in seen else None
                seen.add(stage)
                ax.plot(steps, values, color=f"C{stage}", lw=1.2, alpha=0.8, label=name)
        ax.set_title(f"{modality} gates (attended {modality} term)")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    axes[0].set_ylabel("mean |g|")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI, format="png")
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("workdirs", nargs="+", help="Trained workdirs (with metrics.jsonl).")
    p.add_argument("--out", required=True, help="The PNG to write.")
    p.add_argument("--json", help="Also write the series here.")
    p.add_argument(
        "--labels", help="Comma-separated line labels, one per workdir (default: the paths)."
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Default labels: the workdir's last two path parts (e.g. full/seed0).
    labels = (
        args.labels.split(",")
        if args.labels
        else ["/".join(Path(w).resolve().parts[-2:]) for w in args.workdirs]
    )
    if len(labels) != len(args.workdirs):
        print("--labels needs one label per workdir", file=sys.stderr)
        return 2
    runs = {}
    for label, workdir in zip(labels, args.workdirs):
        if not (Path(workdir) / "metrics.jsonl").is_file():
            print(f"no metrics.jsonl in {workdir}", file=sys.stderr)
            return 1
        runs[label] = read_gate_series(workdir)
    if not any(runs.values()):
        print(
            "no gate/* scalars in these workdirs (ungated or non-attention models?)",
            file=sys.stderr,
        )
        return 1
    path = plot_gate_series(runs, args.out)
    if args.json:
        io.atomic_write_json(args.json, {"command": " ".join(sys.argv), "runs": runs})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
