"""Detection mAP: hand-worked cases, and agreement with a deliberately simple re-implementation.

`reference_evaluate` below follows METHOD_NOTES §5 line by line with plain Python loops
and shares no code with avloc_jax.evaluation.detection_eval. Its tie rules are the documented ones:
equal scores keep input order (Python's sort is stable), equal tIoUs try the earlier
ground truth first.
"""
import math
import warnings

import numpy as np
import pytest

from avloc_jax.evaluation import detection_eval
from avloc_jax.evaluation.detection_eval import DetectionEvalWarning, evaluate_detections

# ---------------------------------------------------------------------------------------
# The simple reference.


def _ref_tiou(p, g):
    inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
    union = (g[1] - g[0]) + (p[1] - p[0]) - inter
    return inter / union if union > 0 else 0.0


def _ref_voc_ap(prec, rec):
    mprec = [0.0] + list(prec) + [0.0]
    mrec = [0.0] + list(rec) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mprec[i]
    return ap


def reference_evaluate(gt, preds, thresholds, subset=None):
    classes, videos, gt_by = [], set(), {}
    for vid, entry in gt["database"].items():
        if subset is not None and entry["subset"] != subset:
            continue
        videos.add(vid)
        for ann in entry["annotations"]:
            if ann["label"] not in classes:
                classes.append(ann["label"])
            gt_by.setdefault((vid, ann["label"]), []).append(ann["segment"])
    kept = []
    for vid, dets in preds["results"].items():
        for d in dets:
            if d["label"] in classes and vid in videos:
                kept.append((vid, d["label"], d["score"], d["segment"]))
    per_class = {}
    for label in classes:
        npos = sum(len(segs) for (vid, lab), segs in gt_by.items() if lab == label)
        mine = sorted([p for p in kept if p[1] == label], key=lambda p: -p[2])  # stable
        aps = []
        for thr in thresholds:
            if not mine:
                aps.append(0.0)
                continue
            locked = set()
            tp, fp = [], []
            for vid, _, _, seg in mine:
                gts = gt_by.get((vid, label), [])
                ious = [_ref_tiou(seg, g) for g in gts]
                hit = False
                for j in sorted(range(len(gts)), key=lambda j: -ious[j]):  # stable
                    if ious[j] < thr:
                        break
                    if (vid, j) in locked:
                        continue
                    locked.add((vid, j))
                    hit = True
                    break
                tp.append(1 if hit else 0)
                fp.append(0 if hit else 1)
            prec, rec, ctp, cfp = [], [], 0, 0
            for t, f in zip(tp, fp):
                ctp += t
                cfp += f
                rec.append(ctp / npos)
                prec.append(ctp / (ctp + cfp))
            aps.append(_ref_voc_ap(prec, rec))
        per_class[label] = aps
    mean_ap = [sum(per_class[c][k] for c in classes) / len(classes) for k in range(len(thresholds))]
    return {"mAP": mean_ap, "average_mAP": sum(mean_ap) / len(mean_ap), "per_class_ap": per_class}


# ---------------------------------------------------------------------------------------
# Helpers


def make_gt(videos, subset="validation"):
    """videos: {vid: [(label, s, e), ...]}."""
    return {
        "version": "test",
        "database": {
            vid: {
                "subset": subset,
                "duration": 100.0,
                "annotations": [{"label": lab, "segment": [s, e]} for lab, s, e in anns],
            }
            for vid, anns in videos.items()
        },
    }


def make_pred(videos):
    """videos: {vid: [(label, score, s, e), ...]}."""
    return {
        "version": "test",
        "results": {
            vid: [{"label": lab, "score": sc, "segment": [s, e]} for lab, sc, s, e in dets]
            for vid, dets in videos.items()
        },
        "external_data": {},
    }


def quiet_evaluate(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetectionEvalWarning)
        return evaluate_detections(*args, **kwargs)


# ---------------------------------------------------------------------------------------
# Hand-worked cases


def test_hand_worked_locking_and_threshold():
    # Class A, video v1, GTs g1=[0,10], g2=[20,30].
    # Visiting order by score: p2=[1,11] (.95), p1=[0,10] (.9), p3=[20,30] (.7).
    # tIoU(p2, g1) = 9/11 = 0.818.
    # thr 0.5: p2 TP (locks g1); p1: g1 locked, g2 tIoU 0 -> FP; p3 TP.
    #   tp=[1,0,1]: rec=[.5,.5,1], prec=[1,.5,2/3]; interpolated prec at the recall
    #   steps: 1 (rec 0->.5) and 2/3 (rec .5->1) -> AP = .5*1 + .5*2/3 = 5/6.
    # thr 0.9: p2 FP (0.818 < 0.9); p1 TP; p3 TP.
    #   tp=[0,1,1]: rec=[0,.5,1], prec=[0,.5,2/3]; running max gives 2/3 at both steps
    #   -> AP = .5*2/3 + .5*2/3 = 2/3.
    gt = make_gt({"v1": [("A", 0, 10), ("A", 20, 30)]})
    pred = make_pred({"v1": [("A", 0.9, 0, 10), ("A", 0.95, 1, 11), ("A", 0.7, 20, 30)]})
    result = evaluate_detections(gt, pred, [0.5, 0.9])
    np.testing.assert_allclose(result["mAP"], [5 / 6, 2 / 3], rtol=0, atol=1e-12)
    assert result["average_mAP"] == pytest.approx((5 / 6 + 2 / 3) / 2, abs=1e-12)
    np.testing.assert_allclose(result["recall"], [1.0, 1.0])


def test_hand_worked_wrong_video_is_false_positive_and_empty_class_is_zero():
    # Class B: GT only in v2. p=[0,5] on v1 (.9) is a FP (v1 has no B); on v2 (.5) a TP.
    #   tp=[0,1]: prec=[0,.5], rec=[0,1] -> AP_B = 1 * .5 = .5.
    # Class A: perfect single detection -> AP_A = 1. Class C has GT but no prediction -> 0.
    gt = make_gt({"v1": [("A", 0, 10)], "v2": [("B", 0, 5)], "v3": [("C", 1, 2)]})
    pred = make_pred({"v1": [("A", 0.3, 0, 10), ("B", 0.9, 0, 5)], "v2": [("B", 0.5, 0, 5)]})
    result = evaluate_detections(gt, pred, [0.5])
    assert result["per_class_ap"] == {"A": [1.0], "B": [0.5], "C": [0.0]}
    assert result["mAP"] == [pytest.approx(0.5)]
    assert result["num_classes"] == 3


def test_gt_video_without_predictions_lowers_recall():
    # Two GTs of A, only v1 is detected: rec=[.5], prec=[1] -> AP = .5 (the final
    # mrec=1 step has interpolated precision 0).
    gt = make_gt({"v1": [("A", 0, 10)], "v2": [("A", 0, 10)]})
    pred = make_pred({"v1": [("A", 0.8, 0, 10)]})
    result = evaluate_detections(gt, pred, [0.5])
    assert result["mAP"] == [pytest.approx(0.5)]
    assert result["recall"] == [pytest.approx(0.5)]


def test_score_ties_follow_input_order():
    # Equal scores; one TP ([0,10]) and one FP ([50,60]); npos = 1.
    # TP first: prec=[1,.5], rec=[1,1] -> AP 1.  FP first: prec=[0,.5], rec=[0,1] -> AP .5.
    gt = make_gt({"v1": [("A", 0, 10)]})
    tp_first = make_pred({"v1": [("A", 0.5, 0, 10), ("A", 0.5, 50, 60)]})
    fp_first = make_pred({"v1": [("A", 0.5, 50, 60), ("A", 0.5, 0, 10)]})
    assert evaluate_detections(gt, tp_first, [0.5])["mAP"] == [pytest.approx(1.0)]
    assert evaluate_detections(gt, fp_first, [0.5])["mAP"] == [pytest.approx(0.5)]
    # Input order spans videos too: the order of `results` then list order.
    gt2 = make_gt({"v1": [("A", 0, 10)], "v2": [("A", 0, 10)]})
    a = make_pred({"v1": [("A", 0.5, 0, 10)], "v2": [("A", 0.5, 30, 40)]})
    b = make_pred({"v2": [("A", 0.5, 30, 40)], "v1": [("A", 0.5, 0, 10)]})
    # a: tp=[1,0] -> rec=[.5,.5], prec=[1,.5] -> AP .5 ; b: tp=[0,1] -> prec=[0,.5] -> AP .25
    assert evaluate_detections(gt2, a, [0.5])["mAP"] == [pytest.approx(0.5)]
    assert evaluate_detections(gt2, b, [0.5])["mAP"] == [pytest.approx(0.25)]


def test_tiou_ties_try_earlier_ground_truth_first():
    # GTs g0=[0,10], g1=[10,20]; p1=[5,15] (.9) has tIoU 1/3 with both -> locks g0 (earlier).
    # p2=[0,10] (.8): g0 (tIoU 1) locked, g1 tIoU 0 -> FP.  tp=[1,0], npos=2:
    # rec=[.5,.5], prec=[1,.5] -> AP .5 (the other tie rule would give 1.0).
    gt = make_gt({"v1": [("A", 0, 10), ("A", 10, 20)]})
    pred = make_pred({"v1": [("A", 0.9, 5, 15), ("A", 0.8, 0, 10)]})
    assert evaluate_detections(gt, pred, [0.3])["mAP"] == [pytest.approx(0.5)]


def test_duplicate_predictions_only_one_matches():
    # Three identical predictions on one GT: tp=[1,0,0] -> rec=[1,1,1], prec=[1,.5,1/3] -> AP 1.
    # Ordered after a FP of higher score: tp=[0,1,0,0] -> AP = 1 * max(prec after) = .5.
    gt = make_gt({"v1": [("A", 0, 10)]})
    dup = make_pred({"v1": [("A", 0.9, 0, 10)] * 3})
    assert evaluate_detections(gt, dup, [0.5])["mAP"] == [pytest.approx(1.0)]
    dup_fp = make_pred({"v1": [("A", 0.99, 40, 50)] + [("A", 0.9, 0, 10)] * 3})
    assert evaluate_detections(gt, dup_fp, [0.5])["mAP"] == [pytest.approx(0.5)]


def test_zero_union_is_zero_tiou():
    assert detection_eval.segment_iou([[3.0, 3.0]], [[3.0, 3.0]])[0] == 0.0
    np.testing.assert_allclose(detection_eval.segment_iou([[0, 10], [0, 4]], [[5, 15], [6, 8]]), [5 / 15, 0.0])


def test_interpolated_ap_rows():
    prec = np.array([[1.0, 0.5, 2 / 3], [0.0, 0.5, 2 / 3]])
    rec = np.array([[0.5, 0.5, 1.0], [0.0, 0.5, 1.0]])
    np.testing.assert_allclose(detection_eval.interpolated_average_precision(prec, rec), [5 / 6, 2 / 3])


# ---------------------------------------------------------------------------------------
# Robustness


def test_unknown_labels_and_videos_are_ignored_with_counted_warnings():
    gt = make_gt({"v1": [("A", 0, 10)]})
    gt["database"]["t1"] = {"subset": "training", "duration": 5.0, "annotations": [{"label": "B", "segment": [0, 1]}]}
    pred = make_pred(
        {
            "v1": [("A", 0.9, 0, 10), ("Z", 0.8, 0, 10), ("Z", 0.7, 0, 10), ("Y", 0.1, 0, 1)],
            "t1": [("A", 0.99, 0, 1)],  # another subset's video
            "nope": [("A", 0.95, 0, 10), ("A", 0.2, 1, 2)],
            "v1x": [("B", 0.5, 0, 1)],  # B exists only in the training subset -> unknown label
        }
    )
    with pytest.warns(DetectionEvalWarning) as record:
        result = evaluate_detections(gt, pred, [0.5], subset="validation")
    messages = [str(w.message) for w in record]
    assert any("ignored 4 predictions whose label" in m for m in messages), messages
    assert any("ignored 3 predictions on 2 videos absent" in m for m in messages), messages
    assert result["num_ignored_unknown_label"] == 4
    assert result["num_ignored_unknown_video"] == 3
    assert result["num_predictions"] == 1
    assert result["mAP"] == [pytest.approx(1.0)]  # the ignored ones did not become FPs


def test_no_warning_when_everything_is_known():
    gt = make_gt({"v1": [("A", 0, 10)]})
    pred = make_pred({"v1": [("A", 0.9, 0, 10)]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate_detections(gt, pred, [0.5])


def test_non_finite_predictions_are_ignored():
    gt = make_gt({"v1": [("A", 0, 10)]})
    pred = make_pred({"v1": [("A", float("nan"), 40, 50), ("A", 0.5, 0, 10), ("A", 0.9, 0, float("inf"))]})
    with pytest.warns(DetectionEvalWarning, match="ignored 2 predictions with a non-finite"):
        result = evaluate_detections(gt, pred, [0.5])
    assert result["mAP"] == [pytest.approx(1.0)]


def test_empty_predictions_and_bad_inputs():
    gt = make_gt({"v1": [("A", 0, 10)], "v2": [("B", 0, 10)]})
    result = evaluate_detections(gt, make_pred({}), [0.5, 0.7])
    assert result["mAP"] == [0.0, 0.0] and result["per_class_ap"] == {"A": [0.0, 0.0], "B": [0.0, 0.0]}
    with pytest.raises(ValueError, match="subset"):
        evaluate_detections(gt, make_pred({}), [0.5], subset="testing")
    with pytest.raises(ValueError, match="results"):
        evaluate_detections(gt, {"foo": {}}, [0.5])
    with pytest.raises(ValueError, match="pair"):
        evaluate_detections(gt, {"results": {"v1": [{"label": "A", "score": 1, "segment": [1, 2, 3]}]}}, [0.5])


def test_parse_tiou_thresholds():
    assert detection_eval.parse_tiou_thresholds("0.5:0.95:10") == tuple(np.round(np.linspace(0.5, 0.95, 10), 10))
    assert detection_eval.parse_tiou_thresholds("0.1,0.2, 0.3") == (0.1, 0.2, 0.3)
    assert detection_eval.parse_tiou_thresholds("0.5") == (0.5,)
    for bad in ("0.5:0.9", "a,b", "0.5:0.9:0", "1.5", ""):
        with pytest.raises(ValueError):
            detection_eval.parse_tiou_thresholds(bad)


# ---------------------------------------------------------------------------------------
# Agreement with the reference on random cases


def random_case(rng):
    labels = ["A", "B", "C", "D"][: rng.integers(1, 5)]
    num_videos = int(rng.integers(1, 7))
    gt_videos, pred_videos = {}, {}
    for v in range(num_videos):
        vid = f"v{v}"
        anns = []
        for _ in range(rng.integers(0, 5)):
            # Integer grid -> frequent exact tIoU ties; some duplicated GTs.
            s = float(rng.integers(0, 40))
            anns.append((str(rng.choice(labels)), s, s + float(rng.integers(1, 20))))
            if rng.random() < 0.1:
                anns.append(anns[-1])
        gt_videos[vid] = anns
        dets = []
        for _ in range(rng.integers(0, 12)):
            if anns and rng.random() < 0.4:  # jittered copy of a GT
                lab, s, e = anns[rng.integers(len(anns))]
                s, e = s + rng.integers(-3, 4), e + rng.integers(-3, 4)
                s, e = float(min(s, e)), float(max(s, e) + 1)
            else:
                s = float(rng.integers(0, 50))
                e = s + float(rng.integers(1, 25))
                lab = str(rng.choice(labels))
            score = float(rng.integers(0, 6)) / 5 if rng.random() < 0.5 else float(rng.random())  # ties
            dets.append((lab, score, s, e))
            if rng.random() < 0.15:
                dets.append(dets[-1])  # exact duplicate
        if rng.random() < 0.8:
            pred_videos[vid] = dets
    if not any(gt_videos.values()):
        gt_videos["v0"] = [("A", 1.0, 5.0)]
    return make_gt(gt_videos), make_pred(pred_videos)


THRESHOLD_SETS = [
    list(np.linspace(0.5, 0.95, 10)),
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
    [0.5],
    [0.0, 1 / 3, 0.5, 1.0],
    [0.7, 0.3, 0.5],  # unsorted on purpose
]


@pytest.mark.parametrize("seed", range(300))
def test_agrees_with_reference_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    gt, pred = random_case(rng)
    thresholds = THRESHOLD_SETS[seed % len(THRESHOLD_SETS)]
    fast = quiet_evaluate(gt, pred, thresholds)
    ref = reference_evaluate(gt, pred, thresholds)
    np.testing.assert_allclose(fast["mAP"], ref["mAP"], rtol=0, atol=1e-9)
    assert math.isclose(fast["average_mAP"], ref["average_mAP"], rel_tol=0, abs_tol=1e-9)
    assert list(fast["per_class_ap"]) == list(ref["per_class_ap"])
    for label, aps in ref["per_class_ap"].items():
        np.testing.assert_allclose(fast["per_class_ap"][label], aps, rtol=0, atol=1e-9)


def test_agrees_with_reference_on_a_larger_case_with_subsets_and_unknowns():
    rng = np.random.default_rng(1234)
    classes = [f"c{i}" for i in range(8)]
    gt_videos, pred_videos = {}, {}
    for v in range(60):
        duration = float(rng.uniform(20, 200))
        anns = []
        for _ in range(rng.integers(1, 6)):
            s = rng.uniform(0, duration * 0.8)
            anns.append((str(rng.choice(classes[:6])), s, min(duration, s + rng.uniform(1, duration / 3))))
        gt_videos[f"v{v}"] = anns
        dets = []
        for _ in range(rng.integers(0, 40)):
            if rng.random() < 0.5:
                lab, s, e = anns[rng.integers(len(anns))]
                s, e = s + rng.normal(0, 3), e + rng.normal(0, 3)
            else:
                lab = str(rng.choice(classes))  # c6, c7 never in the GT
                s = rng.uniform(0, duration)
                e = s + rng.uniform(0.5, duration / 2)
            dets.append((lab, float(np.round(rng.random(), 2)), float(min(s, e)), float(max(s, e))))
        pred_videos[f"v{v}"] = dets
    gt = make_gt(gt_videos)
    for v in range(0, 60, 3):
        gt["database"][f"v{v}"]["subset"] = "training"
    pred = make_pred(pred_videos)
    thresholds = list(np.linspace(0.5, 0.95, 10))
    fast = quiet_evaluate(gt, pred, thresholds, subset="validation")
    ref = reference_evaluate(gt, pred, thresholds, subset="validation")
    assert fast["num_ignored_unknown_video"] > 0 and fast["num_ignored_unknown_label"] > 0
    np.testing.assert_allclose(fast["mAP"], ref["mAP"], rtol=0, atol=1e-9)
    for label, aps in ref["per_class_ap"].items():
        np.testing.assert_allclose(fast["per_class_ap"][label], aps, rtol=0, atol=1e-9)
