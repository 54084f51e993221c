"""Speed of `detection_eval.evaluate_detections` at ActivityNet1.2-validation scale.

  python bench/eval_speed.py [--repeats 5] [--check-reference] [--write-docs docs/performance.md]
                             [--annotations /work/shared/data/activitynet12] [--seed 0]

The ground truth is the real ActivityNet1.2 validation split when the W-TALC annotation
folder is there (read with NumPy only: ids from url.npy after '=', subset.npy,
duration.npy, segments.npy, labels.npy), otherwise a synthetic one of the same size
(2383 videos, 100 classes, 1-8 segments of one class per video). Predictions
are synthesised from a seed: about 80,000 over the 100 classes, jittered copies of ground
truths (right and wrong labels), duplicates, score ties and background detections, the
mix a WTAL localizer emits. NumPy runs single-threaded (the thread variables are set
before NumPy is imported). Prints one JSON object; `--write-docs` puts the figures in the
"Detection evaluation speed" section of the given Markdown file, leaving other sections.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from machine import describe, load_average  # noqa: E402  (bench/machine.py)

from avloc_jax.data import activitynet_json  # noqa: E402
from avloc_jax.evaluation import detection_eval  # noqa: E402

DEFAULT_ANNOTATIONS = "/work/shared/data/activitynet12"
SECTION = "## Detection evaluation speed"


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def real_ground_truth(folder: str) -> list[activitynet_json.GroundTruthVideo]:
    """ActivityNet1.2 validation GT videos from the W-TALC .npy files (NumPy only)."""
    load = lambda name: np.load(os.path.join(folder, name), allow_pickle=True, encoding="bytes")  # noqa: E731
    urls, subsets, durations = load("url.npy"), load("subset.npy"), load("duration.npy")
    segments, labels = load("segments.npy"), load("labels.npy")
    return [
        activitynet_json.GroundTruthVideo(
            video_id=_text(url).split("=", 1)[1],
            subset="validation",
            duration=float(duration),
            segments=np.asarray([[float(s), float(e)] for s, e in segs], np.float64),
            labels=tuple(_text(lab) for lab in labs),
        )
        for url, subset, duration, segs, labs in zip(urls, subsets, durations, segments, labels)
        if _text(subset) == "validation"
    ]


def synthetic_ground_truth(
    rng: np.random.Generator, num_videos: int = 2383, num_classes: int = 100
) -> list[activitynet_json.GroundTruthVideo]:
    """GT videos shaped like ActivityNet1.2 validation: one class per video, 1-8 segments."""
    videos = []
    for v in range(num_videos):
        duration = float(rng.uniform(10, 240))
        label = f"class_{rng.integers(num_classes):03d}"
        segments = []
        for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8]))):
            s = rng.uniform(0, duration * 0.9)
            e = min(duration, s + rng.uniform(1, duration / 2))
            segments.append([float(s), float(e)])
        videos.append(
            activitynet_json.GroundTruthVideo(
                video_id=f"vid_{v:05d}",
                subset="validation",
                duration=duration,
                segments=np.asarray(segments, np.float64),
                labels=(label,) * len(segments),
            )
        )
    return videos


def synthetic_predictions(
    videos: list[activitynet_json.GroundTruthVideo], rng: np.random.Generator, per_video: int = 34
) -> dict:
    """~per_video detections per video: jittered GT copies, wrong classes, background, ties."""
    classes = sorted({label for video in videos for label in video.labels})
    results = {}
    for video in videos:
        duration, anns = video.duration, list(zip(video.labels, video.segments.tolist()))
        dets = []
        for _ in range(int(rng.integers(per_video // 2, per_video * 3 // 2 + 1))):
            kind = rng.random()
            if anns and kind < 0.6:  # a jittered ground truth, right label most of the time
                gt_label, (s, e) = anns[rng.integers(len(anns))]
                length = max(e - s, 1e-3)
                s, e = s + rng.normal(0, 0.15 * length), e + rng.normal(0, 0.15 * length)
                label = gt_label if rng.random() < 0.85 else classes[rng.integers(len(classes))]
            else:  # background
                s = rng.uniform(0, duration)
                e = s + rng.uniform(0.5, duration / 3)
                label = (
                    anns[0][0]
                    if anns and rng.random() < 0.7
                    else classes[rng.integers(len(classes))]
                )
            s, e = max(0.0, min(s, e)), min(duration, max(s, e))
            score = float(np.round(rng.random(), 3))  # 3 decimals -> many score ties
            dets.append((label, score, float(s), float(e)))
        if dets and rng.random() < 0.3:
            dets.append(dets[0])  # exact duplicate
        results[video.video_id] = dets
    return activitynet_json.predictions_payload(
        results, version="synthetic", external_data={"used": False}
    )


def machine(load_at_start: list[float] | None) -> dict:
    """bench/machine.py's description (measured at the end of the timings; the cores may
    be shared, so the load when they started and ended), with NumPy and its threads."""
    return {
        **describe(load_at_start),
        "numpy": np.__version__,
        "numpy_threads": os.environ["OMP_NUM_THREADS"],
    }


def time_calls(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def write_docs(path: str, report: dict) -> None:
    """Replace (or append) the SECTION of the Markdown file; other sections stay as they are."""
    t = report["timings_s"]
    case = report["case"]
    m = report["machine"]
    load = " → ".join(
        "n/a" if x is None else "/".join(f"{v:.2f}" for v in x)
        for x in (m["load_average_start"], m["load_average_end"])
    )
    lines = [
        SECTION,
        "",
        f"Measured by `{report['command']}` on {m['platform']} ({m['cpu_model']}, "
        f"{m['cpus']} CPUs, {m['usable_cpus']} usable, Python {m['python']}, NumPy "
        f"{m['numpy']}, NumPy single-threaded; load average (1/5/15 min) when the timings "
        f"started → ended: {load}).",
        "",
        f"Case: {case['ground_truth']}: {case['num_videos']} videos, "
        f"{case['num_ground_truth']} ground-truth "
        f"segments, {case['num_classes']} classes; "
        f"{case['num_predictions']} synthetic predictions (seed "
        f"{case['seed']}; {case['num_reversed_segments']} of them with a reversed segment); tIoU "
        "0.5:0.05:0.95 (10 thresholds).",
        "",
        "| What | best (s) | median (s) |",
        "|---|---|---|",
        f"| `evaluate_detections` (dicts in memory, parsing included) | {t['evaluate_best']:.3f} | "
        f"{t['evaluate_median']:.3f} |",
        f"| of which: prediction dicts -> arrays | {t['parse_predictions_best']:.3f} | |",
    ]
    if "reference_best" in t:
        check = report["reference_check"]
        lines.append(
            "| loop version: `reference_evaluate` of `tests/test_detection_eval.py`, the official "
            f"algorithm one prediction at a time | {t['reference_best']:.2f} | "
            f"{t['reference_median']:.2f} |"
        )
        lines += [
            "",
            f"Speed-up of `evaluate_detections` over the loop version: "
            f"{t['reference_median'] / t['evaluate_median']:.1f}x (medians).",
            "",
            f"Agreement with the loop version: max |ΔAP| over all classes and thresholds = "
            f"{check['max_abs_diff_per_class_ap']:.1e}"
            + (" (per-class AP and mAP bitwise equal)" if check["bitwise_identical"] else "")
            + f"; average mAP {report['average_mAP']:.6f} from both.",
        ]
    lines += [
        "",
        "The machine's cores are shared with other jobs, so these are upper bounds. The real",
        "ActivityNet ground truth has few segments per (video, class), so even the loop version",
        "is fairly fast here; the vectorised version's advantage grows with segments and",
        "predictions per video (its Python loop runs once per *round*, not per prediction).",
        "",
    ]
    section = "\n".join(lines)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    else:
        text = "# Performance\n\n"
    start = text.find(SECTION + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("" if end < 0 else text[end:])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--annotations",
        default=DEFAULT_ANNOTATIONS,
        help="W-TALC ActivityNet1.2 annotation folder.",
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="Synthesise the GT even if the folder exists."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--check-reference", action="store_true", help="Also time and compare the tests' reference."
    )
    parser.add_argument("--write-docs", default=None, help="Markdown file to put the figures in.")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    if not args.synthetic and os.path.exists(os.path.join(args.annotations, "segments.npy")):
        videos, gt_name = real_ground_truth(args.annotations), "ActivityNet1.2 validation GT (real)"
        version = "ActivityNet1.2 validation (W-TALC annotations)"
    else:
        videos, gt_name = (
            synthetic_ground_truth(rng),
            "synthetic ActivityNet1.2-validation-scale GT",
        )
        version = "synthetic ActivityNet1.2-validation scale"
    ground_truth = activitynet_json.ground_truth_payload(videos, version=version)
    predictions = synthetic_predictions(videos, rng)
    thresholds = np.linspace(0.5, 0.95, 10)

    def run_fast():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", detection_eval.DetectionEvalWarning)
            return detection_eval.evaluate_detections(
                ground_truth, predictions, thresholds, subset="validation"
            )

    load_start = load_average()  # before the timings
    times, result = time_calls(run_fast, args.repeats)
    # The share of the time spent turning the prediction dicts into arrays.
    video_index, class_index, *_ = detection_eval._parse_ground_truth(ground_truth, "validation")

    def run_parse():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", detection_eval.DetectionEvalWarning)
            return detection_eval._parse_predictions(predictions, video_index, class_index)

    parse_times, _ = time_calls(run_parse, args.repeats)
    timings = {
        "evaluate_best": min(times),
        "evaluate_median": statistics.median(times),
        "evaluate_all": times,
        "parse_predictions_best": min(parse_times),
    }
    reference_check = None
    if args.check_reference:
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        # The loop transcription of the official algorithm that the tests compare against.
        from test_detection_eval import reference_evaluate

        ref_times, ref = time_calls(
            lambda: reference_evaluate(
                ground_truth, predictions, list(thresholds), subset="validation"
            ),
            max(1, min(args.repeats, 2)),
        )
        diff = max(
            abs(a - b)
            for label, aps in ref["per_class_ap"].items()
            for a, b in zip(aps, result["per_class_ap"][label])
        )
        timings.update(reference_best=min(ref_times), reference_median=statistics.median(ref_times))
        reference_check = {
            "max_abs_diff_per_class_ap": diff,
            "max_abs_diff_mAP": max(abs(a - b) for a, b in zip(ref["mAP"], result["mAP"])),
            "identical_to_1e-12": diff <= 1e-12,
            "bitwise_identical": ref["per_class_ap"] == result["per_class_ap"]
            and ref["mAP"] == result["mAP"],
        }
    report = {
        "command": "python "
        + " ".join([os.path.relpath(__file__, ROOT)] + (sys.argv[1:] if argv is None else argv)),
        "machine": machine(load_start),  # after the last timing: the load when they ended
        "case": {
            "ground_truth": gt_name,
            "seed": args.seed,
            "num_videos": result["num_videos"],
            "num_ground_truth": result["num_ground_truth"],
            "num_classes": result["num_classes"],
            "num_predictions": result["num_predictions"],
            "num_reversed_segments": result["num_reversed_segments"],
            "tiou_thresholds": result["tiou_thresholds"],
        },
        "timings_s": timings,
        "mAP": result["mAP"],
        "average_mAP": result["average_mAP"],
        **({"reference_check": reference_check} if reference_check is not None else {}),
    }
    print(json.dumps(report, indent=1))
    if args.write_docs:
        write_docs(args.write_docs, report)
    if args.check_reference and not report["reference_check"]["identical_to_1e-12"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
