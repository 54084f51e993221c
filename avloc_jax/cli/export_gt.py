"""`avloc export-gt --annotations DIR --layout {activitynet12,thumos14} --out GT.json
[--subset S ...]`.

Writes the ActivityNet-format ground truth (``{"version", "database": {video_id:
{"subset", "duration", "annotations": [{"label", "segment"}]}}}``) of a W-TALC annotation
folder, for `avloc eval-detections` and for other codebases. ActivityNet1.2 ids are YouTube
ids (url.npy); THUMOS14 keeps its 20-class detection videos, ids = video names.

Errors are one line ``avloc export-gt: error: ...``: exit 2 for an --out that cannot be
written (checked first), 1 for unreadable annotations; --out is then left as it was.
"""

from __future__ import annotations

import argparse

from avloc_jax.cli import messages
from avloc_jax.data import activitynet_json
from avloc_jax.data import wtalc_annotations as wtalc
from avloc_jax.data.annotation_common import DataError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avloc export-gt", description=__doc__.split("\n\n")[1])
    p.add_argument("--annotations", required=True, help="The W-TALC annotation folder.")
    p.add_argument("--layout", required=True, choices=sorted(wtalc.LAYOUTS))
    p.add_argument("--out", required=True, help="Output JSON path.")
    p.add_argument(
        "--subset",
        action="append",
        default=None,
        help="Subset(s) to write (repeatable); default: all of the layout's "
        "(training+validation / validation+test).",
    )
    return p


PROGRAM = "avloc export-gt"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    problem = messages.output_problem(args.out)
    if problem:
        return messages.fail(PROGRAM, f"--out: {problem}", 2)
    try:
        layout = wtalc.read_layout(args.annotations, args.layout)
        gt = wtalc.wtalc_ground_truth(layout, args.layout, args.subset)
        counts = activitynet_json.subset_counts(gt)
        # Via a temporary file: never a half-written GT file (as wtalc.write_ground_truth_json).
        messages.write_file(args.out, activitynet_json.dumps_ground_truth(gt))
    except DataError as err:
        return messages.fail(PROGRAM, str(err), 1)
    except OSError as err:
        return messages.fail(PROGRAM, f"cannot write {args.out}: {err.strerror or err}", 1)
    for subset, (videos, segments) in counts.items():
        print(f"{subset}: {videos} videos, {segments} segments")
    print(f"wrote {args.out}")
    return 0
