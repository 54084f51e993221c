"""Where the foreground reliability μ is high: inside actions, beside them, or far away.

  python bench/reliability_regions.py --data-dir DATA --split validation --out regions.json \\
      WORKDIR [WORKDIR ...]

For every trained workdir (an `avloc train` or `bench/ablations.py` run), runs the best
checkpoint on a split of an untrimmed dataset and reports the mean μ and the mean posterior
of the video's ground-truth class p_t(c) over three groups of snippets: inside a
ground-truth segment ("action"), within `--context-seconds` outside one ("context"), and
the rest ("far"). A μ that does not separate these groups leaves localization to the class
softmax alone (docs/results.md). Writes JSON with the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine import describe, load_average  # noqa: E402  (bench/machine.py)

from avloc_jax.common import io  # noqa: E402  (atomic writes; imports nothing heavy)

REGIONS = ("action", "context", "far")


def snippet_regions(
    duration: float, num_snippets: int, segments: np.ndarray, context_seconds: float
) -> dict[str, np.ndarray]:
    """Boolean masks [T] of the three regions, from snippet centres t = (i + 0.5) duration / T."""
    centres = (np.arange(num_snippets) + 0.5) * duration / num_snippets
    inside = np.zeros(num_snippets, bool)
    near = np.zeros(num_snippets, bool)
    for start, end in np.asarray(segments, np.float64).reshape(-1, 2):
        inside |= (centres >= start) & (centres < end)
        near |= (centres >= start - context_seconds) & (centres < end + context_seconds)
    near &= ~inside
    return {"action": inside, "context": near, "far": ~inside & ~near}


def region_means(
    workdir: str, data_dir: str | None, split: str, context_seconds: float
) -> dict[str, dict[str, float]]:
    from avloc_jax.serving import inference

    loaded = inference.load(workdir=workdir, notice=lambda message: None)
    dataset = inference.load_split_dataset(loaded, data_dir)
    split = dataset.metadata.resolve_split(split)
    _, outputs = inference.predict_split(loaded, dataset, split)
    source = dataset.split(split)
    sums = {r: {"reliability": [], "gt_class_posterior": []} for r in REGIONS}
    for index, out in outputs.items():
        record = source[index]
        if not len(record["segment_labels"]):
            continue
        reliability = np.asarray(out["reliability"])
        length = len(reliability)
        masks = snippet_regions(
            float(record["duration"]), length, record["segments"], context_seconds
        )
        # The posterior of the video's ground-truth class(es): the best of them per snippet.
        classes = np.unique(np.asarray(record["segment_labels"]))
        gt_posterior = np.asarray(out["posterior"])[:length, classes].max(axis=-1)
        for region, mask in masks.items():
            sums[region]["reliability"].append(reliability[mask])
            sums[region]["gt_class_posterior"].append(gt_posterior[mask])
    return {
        region: {
            key: float(np.concatenate(values).mean()) if values else float("nan")
            for key, values in parts.items()
        }
        | {"snippets": int(sum(len(v) for v in parts["reliability"]))}
        for region, parts in sums.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+")
    parser.add_argument(
        "--data-dir", help="TFDS data dir (default: the one in each workdir's config)."
    )
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--context-seconds", type=float, default=3.0, help="Width of the 'context' band."
    )
    parser.add_argument("--out", help="JSON output path (default: stdout only).")
    args = parser.parse_args(argv)
    os.environ.setdefault("AVLOC_PROGRESS", "0")
    warnings.filterwarnings("ignore")
    load_start = load_average()
    results = {}
    for workdir in args.workdirs:
        results[workdir] = region_means(workdir, args.data_dir, args.split, args.context_seconds)
        row = results[workdir]
        print(
            workdir
            + ": "
            + "; ".join(
                f"{r} μ {row[r]['reliability']:.2f} p(gt) {row[r]['gt_class_posterior']:.2f}"
                for r in REGIONS
            ),
            flush=True,
        )
    payload = {
        "command": "python bench/reliability_regions.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": describe(load_start, with_jax=True),
        "split": args.split,
        "context_seconds": args.context_seconds,
        "results": results,
    }
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        io.atomic_write_json(out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
