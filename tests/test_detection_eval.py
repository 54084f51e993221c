"""Detection mAP: hand-worked cases, and agreement with a plain transcription of the official code.

`reference_evaluate` below transcribes the official ActivityNet algorithm from its
description in METHOD_NOTES §5, one loop iteration per prediction, and shares no code with
avloc_jax.evaluation.detection_eval. Its orders are the official calls': per class, the predictions
in file order are visited by `np.argsort(scores)[::-1]`; per prediction, the ground truths
of its video are tried by `np.argsort(tiou)[::-1]`. Those calls are the definition of the
official tie order (numpy's default sort is unstable), so the reference makes them too.
The project's documented deviations are transcribed as well: predictions with an unknown
label or video or a non-finite value are skipped (after taking part in the score sort), and
a zero union gives tIoU 0.
"""

import json
import math
import os
import warnings

import numpy as np
import pytest

from avloc_jax.data import activitynet_json
from avloc_jax.evaluation import detection_eval
from avloc_jax.evaluation.detection_eval import (
    DetectionEvalWarning,
    DetectionFormatError,
    evaluate_detections,
)

THUMOS14 = "/work/shared/data/thumos14"

# ---------------------------------------------------------------------------------------
# The reference.


def _ref_tiou(p, g):
    # inter = max(0, min(e) - max(s)), union = len_a + len_b - inter. Each Python float
    # operation rounds like numpy's, and the order is the official one (len_gt + len_pred
    # - inter), so the values are bitwise the official ones; zero union: 0 (deviation).
    inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
    union = (g[1] - g[0]) + (p[1] - p[0]) - inter
    return inter / union if union != 0 else 0.0


def _ref_voc_ap(prec, rec):
    # mprec = [0, prec, 0], mrec = [0, rec, 1]; running max from the right; the sum of
    # Δrec · mprec where rec changes (summed by np.sum, as the official code does).
    mprec = [0.0] + list(prec) + [0.0]
    mrec = [0.0] + list(rec) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    terms = [
        (mrec[i] - mrec[i - 1]) * mprec[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]
    ]
    return float(np.sum(np.array(terms, np.float64)))


def reference_evaluate(gt, preds, thresholds, subset=None):
    classes, videos, gt_by = [], set(), {}
    for vid, entry in gt["database"].items():
        if subset is not None and entry["subset"] != subset:
            continue
        videos.add(vid)
        for ann in entry["annotations"]:
            if ann["label"] not in classes:
                classes.append(ann["label"])
            gt_by.setdefault((vid, ann["label"]), []).append([float(x) for x in ann["segment"]])
    # pandas keeps a column of Python ints as int64 and argsort then runs on int64.
    all_scores = [d["score"] for dets in preds["results"].values() for d in dets]
    score_dtype = np.int64 if all_scores and all(type(s) is int for s in all_scores) else np.float64
    per_class, matched = {}, [0] * len(thresholds)
    for label in classes:
        npos = sum(len(segs) for (vid, lab), segs in gt_by.items() if lab == label)
        # The class's predictions in file order: videos in the order of `results`, then list order.
        rows = [
            (vid, d["score"], [float(x) for x in d["segment"]])
            for vid, dets in preds["results"].items()
            for d in dets
            if d["label"] == label
        ]
        if not rows:
            per_class[label] = [0.0] * len(thresholds)
            continue
        visit = np.argsort(np.array([score for _, score, _ in rows], score_dtype))[::-1]
        locked = [set() for _ in thresholds]
        tp = [[] for _ in thresholds]
        for i in visit:
            vid, score, seg = rows[i]
            if vid not in videos or not (math.isfinite(score) and all(map(math.isfinite, seg))):
                continue  # deviation: ignored, but it did take part in the sort above
            gts = gt_by.get((vid, label), [])
            if not gts:
                for k in range(len(thresholds)):
                    tp[k].append(False)
                continue
            tiou = np.array([_ref_tiou(seg, g) for g in gts], np.float64)
            tried = np.argsort(tiou)[::-1]
            for k, thr in enumerate(thresholds):
                hit = False
                for j in tried:
                    if tiou[j] < thr:
                        break
                    if (vid, j) in locked[k]:  # j indexes the video's GTs of this class
                        continue
                    locked[k].add((vid, j))
                    hit = True
                    break
                tp[k].append(hit)
        aps = []
        for k in range(len(thresholds)):
            prec, rec, ctp, cfp = [], [], 0, 0
            for hit in tp[k]:
                ctp += hit
                cfp += not hit
                rec.append(ctp / npos)
                prec.append(ctp / (ctp + cfp))
            matched[k] += ctp
            aps.append(_ref_voc_ap(prec, rec) if tp[k] else 0.0)
        per_class[label] = aps
    ap = np.array([per_class[c] for c in classes], np.float64).T.copy()  # [K, C] as officially
    mean_ap = ap.mean(axis=1)
    num_gt = sum(len(segs) for segs in gt_by.values())
    return {
        "mAP": [float(x) for x in mean_ap],
        "average_mAP": float(mean_ap.mean()),
        "per_class_ap": per_class,
        "recall": [m / num_gt for m in matched],
    }


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


def assert_same(fast, ref, atol=1e-12):
    np.testing.assert_allclose(fast["mAP"], ref["mAP"], rtol=0, atol=atol)
    assert math.isclose(fast["average_mAP"], ref["average_mAP"], rel_tol=0, abs_tol=atol)
    assert list(fast["per_class_ap"]) == list(ref["per_class_ap"])
    for label, aps in ref["per_class_ap"].items():
        np.testing.assert_allclose(fast["per_class_ap"][label], aps, rtol=0, atol=atol)
    np.testing.assert_allclose(fast["recall"], ref["recall"], rtol=0, atol=atol)


# ---------------------------------------------------------------------------------------
# Hand-worked cases


def test_issue_13_minimal_case_later_ground_truth_first():
    # GT X [2, 4], X [6, 8]; predictions X .9 [0, 10], X .8 [6, 8].
    # The first prediction has tIoU 2/10 with both GTs; the official code tries them by
    # argsort([.2, .2])[::-1] = [1, 0]: [6, 8] first, which it locks. The second one then
    # finds [6, 8] locked and [2, 4] at tIoU 0: FP. tp = [1, 0], npos 2 -> AP@0.1 = .5.
    # At 0.5 the first is a FP and the second a TP: prec [0, .5], rec [0, .5] -> .25.
    if np.argsort(np.array([0.2, 0.2])).tolist() != [0, 1]:
        pytest.skip("this numpy's argsort reorders two equal values; the official result differs")
    gt = make_gt({"v": [("X", 2.0, 4.0), ("X", 6.0, 8.0)]})
    pred = make_pred({"v": [("X", 0.9, 0.0, 10.0), ("X", 0.8, 6.0, 8.0)]})
    result = evaluate_detections(gt, pred, [0.1, 0.5])
    assert result["mAP"] == [0.5, 0.25]
    assert result["per_class_ap"] == {"X": [0.5, 0.25]}


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


@pytest.mark.parametrize("n", [2, 5, 20, 40])
def test_score_ties_are_visited_in_numpys_reversed_argsort_order(n):
    # n predictions of equal score, one GT; only prediction k overlaps it. The TP is
    # visited at position `pos` of argsort(scores)[::-1] -> AP = 1 / (pos + 1). For
    # n >= 4 numpy's default sort may be unstable, so pos is not simply n - 1 - k.
    gt = make_gt({"v": [("A", 0.0, 10.0)]})
    visit = np.argsort(np.full(n, 0.5))[::-1].tolist()
    for k in range(n):
        dets = [("A", 0.5, 50.0 + i, 51.0 + i) for i in range(n)]
        dets[k] = ("A", 0.5, 0.0, 10.0)
        result = evaluate_detections(gt, make_pred({"v": dets}), [0.5])
        assert result["mAP"] == [1 / (visit.index(k) + 1)], k


@pytest.mark.parametrize("n", [2, 5, 20])
def test_tiou_ties_try_ground_truths_in_numpys_reversed_argsort_order(n):
    # n GTs [2i, 2i+1] inside the first prediction [0, 2n]: tIoU 1/(2n) with each, exactly.
    # It locks the first GT of argsort(tiou)[::-1]. The second prediction equals GT j:
    # FP if j was locked (tp [1, 0] -> AP 1/n), else TP (tp [1, 1] -> AP 2/n).
    gts = [("A", 2.0 * i, 2.0 * i + 1) for i in range(n)]
    gt = make_gt({"v": gts})
    locked = int(np.argsort(np.full(n, 1 / (2 * n)))[::-1][0])
    for j in range(n):
        pred = make_pred({"v": [("A", 0.9, 0.0, 2.0 * n), ("A", 0.8, 2.0 * j, 2.0 * j + 1)]})
        result = evaluate_detections(gt, pred, [0.2 / n])
        assert result["mAP"] == [(1 if j == locked else 2) / n], j


def test_ignored_predictions_keep_their_place_in_the_score_sort():
    # The official code argsorts the scores of *all* the class's predictions, those on
    # videos absent from the ground truth included; dropping them before the sort could
    # reorder the tied others. 30 tied predictions, every third on an unknown video.
    gt = make_gt({"v": [("A", 0.0, 10.0), ("A", 20.0, 30.0)]})
    results = {}
    for i in range(30):
        vid = "elsewhere" if i % 3 == 0 else "v"
        s = [0.0, 20.0, 50.0][i % 3]
        results.setdefault(f"{vid}{i}", []).append(("A", 0.5, s, s + 10.0))
    gt["database"].update({f"v{i}": gt["database"]["v"] for i in range(30) if i % 3})
    pred = make_pred(results)
    fast = quiet_evaluate(gt, pred, [0.5])
    assert fast["num_ignored_unknown_video"] == 10
    assert_same(fast, reference_evaluate(gt, pred, [0.5]))


def test_duplicate_predictions_only_one_matches():
    # Three identical predictions on one GT: tp=[1,0,0] -> rec=[1,1,1], prec=[1,.5,1/3] -> AP 1.
    # Ordered after a FP of higher score: tp=[0,1,0,0] -> AP = 1 * max(prec after) = .5.
    gt = make_gt({"v1": [("A", 0, 10)]})
    dup = make_pred({"v1": [("A", 0.9, 0, 10)] * 3})
    assert evaluate_detections(gt, dup, [0.5])["mAP"] == [pytest.approx(1.0)]
    dup_fp = make_pred({"v1": [("A", 0.99, 40, 50)] + [("A", 0.9, 0, 10)] * 3})
    assert evaluate_detections(gt, dup_fp, [0.5])["mAP"] == [pytest.approx(0.5)]


def test_segment_iou_is_bitwise_the_official_formula():
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 100, (1000, 2)), axis=1)
    b = np.sort(rng.uniform(0, 100, (1000, 2)), axis=1)
    # The official per-prediction call: target a[i], candidates b.
    official = []
    for i in range(0, 1000, 100):
        tt1 = np.maximum(a[i, 0], b[:, 0])
        tt2 = np.minimum(a[i, 1], b[:, 1])
        inter = (tt2 - tt1).clip(0)
        union = (b[:, 1] - b[:, 0]) + (a[i, 1] - a[i, 0]) - inter
        official.append(inter / union)
        np.testing.assert_array_equal(detection_eval.segment_iou(a[i], b), official[-1])
        np.testing.assert_array_equal(detection_eval.segment_iou(b, a[i]), official[-1])


def test_zero_union_is_zero_tiou():
    assert detection_eval.segment_iou([[3.0, 3.0]], [[3.0, 3.0]])[0] == 0.0
    np.testing.assert_allclose(
        detection_eval.segment_iou([[0, 10], [0, 4]], [[5, 15], [6, 8]]), [5 / 15, 0.0]
    )


def test_interpolated_ap_rows():
    prec = np.array([[1.0, 0.5, 2 / 3], [0.0, 0.5, 2 / 3]])
    rec = np.array([[0.5, 0.5, 1.0], [0.0, 0.5, 1.0]])
    np.testing.assert_allclose(
        detection_eval.interpolated_average_precision(prec, rec), [5 / 6, 2 / 3]
    )


# ---------------------------------------------------------------------------------------
# Robustness


def test_unknown_labels_and_videos_are_ignored_with_counted_warnings():
    gt = make_gt({"v1": [("A", 0, 10)]})
    gt["database"]["t1"] = {
        "subset": "training",
        "duration": 5.0,
        "annotations": [{"label": "B", "segment": [0, 1]}],
    }
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
    pred = make_pred(
        {"v1": [("A", float("nan"), 40, 50), ("A", 0.5, 0, 10), ("A", 0.9, 0, float("inf"))]}
    )
    with pytest.warns(DetectionEvalWarning, match="ignored 2 predictions with a non-finite"):
        result = evaluate_detections(gt, pred, [0.5])
    assert result["mAP"] == [pytest.approx(1.0)]


def test_reversed_segments_are_scored_with_a_counted_warning():
    # [9, 3] and [40, 20]: tIoU 0 with every GT, so FPs (as in the official code).
    # Visiting order .9 [9,3] FP, .8 [0,10] TP, .7 [40,20] FP: prec [0, .5], rec [0, 1] -> .5.
    gt = make_gt({"v1": [("A", 0, 10)]})
    pred = make_pred({"v1": [("A", 0.9, 9, 3), ("A", 0.8, 0, 10)], "v2": [("A", 0.7, 40, 20)]})
    gt["database"]["v2"] = {"subset": "validation", "annotations": []}
    with pytest.warns(DetectionEvalWarning) as record:
        result = evaluate_detections(gt, pred, [0.5])
    (message,) = [str(w.message) for w in record]
    assert message.startswith("2 predictions have a reversed segment, start > end")
    assert "video 'v1', entry 0 (0-based), [9.0, 3.0]" in message
    assert result["num_reversed_segments"] == 2 and result["num_predictions"] == 3
    assert result["mAP"] == [0.5]


@pytest.mark.parametrize(
    "entry, problem",
    [
        (
            {"label": "A", "score": "high", "segment": [0, 1]},
            "'score' must be a number; got 'high'",
        ),
        ({"label": "A", "score": "0.5", "segment": [0, 1]}, "'score' must be a number; got '0.5'"),
        ({"label": "A", "score": None, "segment": [0, 1]}, "'score' must be a number; got None"),
        ({"label": "A", "score": True, "segment": [0, 1]}, "'score' must be a number; got True"),
        ({"label": "A", "segment": [0, 1]}, "no 'score' key (keys present: 'label', 'segment')"),
        ({"score": 0.5, "segment": [0, 1]}, "no 'label' key"),
        ({"label": "A", "score": 0.5}, "no 'segment' key"),
        ({"label": "A", "score": 0.5, "segment": [0, 1, 2]}, "'segment' must be [start, end]"),
        ({"label": "A", "score": 0.5, "segment": ["0", 1]}, "'segment' must be [start, end]"),
        ({"label": "A", "score": 0.5, "segment": 3}, "'segment' must be [start, end]"),
        ({"label": ["A"], "score": 0.5, "segment": [0, 1]}, "'label' must be a string"),
        (["A", 0.5, [0, 1]], "expected an object with 'label', 'score', 'segment'"),
    ],
)
def test_malformed_prediction_names_video_and_entry(tmp_path, entry, problem):
    gt = make_gt({"v1": [("A", 0, 10)], "v2": [("A", 0, 10)]})
    good = {"label": "A", "score": 0.5, "segment": [0, 10]}
    pred = {"results": {"v1": [good], "v2": [good, good, entry, good]}}
    with pytest.raises(DetectionFormatError) as info:
        evaluate_detections(gt, pred, [0.5])
    assert str(info.value).startswith(f"predictions, video 'v2', entry 2 (0-based): {problem}")
    # Through the file API the message names the file.
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(pred))
    with pytest.raises(ValueError) as info:
        detection_eval.evaluate_detection_files(gt_path, pred_path, [0.5])
    assert str(info.value).startswith(
        f"predictions file {str(pred_path)!r}, video 'v2', entry 2 (0-based): {problem}"
    )


def test_malformed_structure_and_ground_truth(tmp_path):
    gt = make_gt({"v1": [("A", 0, 10)]})
    with pytest.raises(DetectionFormatError, match=r"^predictions, video 'v1': expected a list"):
        evaluate_detections(gt, {"results": {"v1": {"label": "A"}}}, [0.5])
    with pytest.raises(DetectionFormatError, match=r"^predictions: 'results' must map"):
        evaluate_detections(gt, {"results": [1, 2]}, [0.5])
    bad_gt = make_gt({"v1": [("A", 0, 10)], "v2": [("A", 0, 10), ("A", 1, 2)]})
    del bad_gt["database"]["v2"]["annotations"][1]["segment"]
    pred = make_pred({"v1": [("A", 0.5, 0, 10)]})
    match = r"^ground truth, video 'v2', annotation 1 \(0-based\): no 'segment' key"
    with pytest.raises(DetectionFormatError, match=match):
        evaluate_detections(bad_gt, pred, [0.5])
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(bad_gt))
    pred_path.write_text(json.dumps(pred))
    with pytest.raises(
        ValueError, match=rf"^ground-truth file '{gt_path}', video 'v2', annotation 1"
    ):
        detection_eval.evaluate_detection_files(gt_path, pred_path, [0.5])


def test_numpy_values_in_memory_are_accepted():
    gt = make_gt({"v1": [("A", 0, 10)]})
    pred = {
        "results": {
            "v1": [{"label": "A", "score": np.float32(0.5), "segment": np.array([0.0, 10.0])}]
        }
    }
    assert evaluate_detections(gt, pred, [0.5])["mAP"] == [1.0]


def test_empty_predictions_and_bad_inputs():
    gt = make_gt({"v1": [("A", 0, 10)], "v2": [("B", 0, 10)]})
    result = evaluate_detections(gt, make_pred({}), [0.5, 0.7])
    assert result["mAP"] == [0.0, 0.0]
    assert result["per_class_ap"] == {"A": [0.0, 0.0], "B": [0.0, 0.0]}
    with pytest.raises(ValueError, match="subset"):
        evaluate_detections(gt, make_pred({}), [0.5], subset="testing")
    with pytest.raises(ValueError, match="results"):
        evaluate_detections(gt, {"foo": {}}, [0.5])


def test_parse_tiou_thresholds():
    assert detection_eval.parse_tiou_thresholds("0.5:0.95:10") == tuple(
        np.round(np.linspace(0.5, 0.95, 10), 10)
    )
    assert detection_eval.parse_tiou_thresholds("0.1,0.2, 0.3") == (0.1, 0.2, 0.3)
    assert detection_eval.parse_tiou_thresholds("0.5") == (0.5,)
    for bad in ("0.5:0.9", "a,b", "0.5:0.9:0", "1.5", ""):
        with pytest.raises(ValueError):
            detection_eval.parse_tiou_thresholds(bad)


# ---------------------------------------------------------------------------------------
# Agreement with the reference


def grid_case(rng):
    """A small case on an integer grid, so that ties abound: equal scores, equal tIoUs,
    duplicate predictions and GTs, nested, touching and zero-length segments, a few
    reversed segments and predictions on unknown videos."""
    labels = ["A", "B", "C"][: rng.integers(1, 4)]
    big = rng.random() < 0.3  # groups large enough for numpy's unstable sort paths
    gt_videos, pred_videos = {}, {}
    int_scores = rng.random() < 0.1  # every score a JSON integer: pandas sorts int64
    for v in range(int(rng.integers(1, 4 if big else 6))):
        anns = []
        for _ in range(rng.integers(0, 14 if big else 6)):
            s = int(rng.integers(0, 16))
            anns.append((str(rng.choice(labels)), float(s), float(s + rng.integers(1, 5))))
            if rng.random() < 0.1:
                anns.append(anns[-1])  # duplicated GT
        gt_videos[f"v{v}"] = anns
        dets = []
        for _ in range(rng.integers(0, 40 if big else 12)):
            kind = rng.random()
            if anns and kind < 0.35:  # a GT, shifted or widened on the grid
                lab, s, e = anns[rng.integers(len(anns))]
                s, e = s - rng.integers(0, 3), e + rng.integers(0, 3)
            elif len(anns) >= 2 and kind < 0.55:  # the hull of two GTs (equal tIoUs)
                a, b = rng.choice(len(anns), 2, replace=False)
                lab = anns[a][0]
                s, e = min(anns[a][1], anns[b][1]), max(anns[a][2], anns[b][2])
            else:
                lab = str(rng.choice(labels))
                s = int(rng.integers(0, 18))
                e = s + int(rng.integers(0, 8))  # zero-length now and then
            if rng.random() < 0.03:
                s, e = e + 1, s  # reversed
            if int_scores:
                score = int(rng.integers(0, 3))
            elif rng.random() < 0.8:
                score = float(rng.integers(1, 5)) / 4  # heavy score ties
            else:
                score = float(rng.random())
            dets.append((str(lab), score, float(s), float(e)))
            if rng.random() < 0.15:
                dets.append(dets[-1])  # exact duplicate
        if rng.random() < 0.85:
            pred_videos[f"v{v}"] = dets
    if rng.random() < 0.3:  # predictions on a video the GT does not have
        pred_videos["elsewhere"] = [(labels[0], 0.5, 0.0, 4.0), (labels[0], 0.25, 1.0, 3.0)]
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


@pytest.mark.parametrize("seed", range(400))
def test_agrees_with_the_official_transcription_on_grid_cases(seed):
    rng = np.random.default_rng(seed)
    gt, pred = grid_case(rng)
    thresholds = THRESHOLD_SETS[seed % len(THRESHOLD_SETS)]
    fast = quiet_evaluate(gt, pred, thresholds)
    ref = reference_evaluate(gt, pred, thresholds)
    assert_same(fast, ref)
    # The AP sums are taken like the official ones, so the values are not just close.
    assert fast["per_class_ap"] == ref["per_class_ap"]


def test_grid_cases_do_exercise_unstable_tie_orders():
    # Guard for the test above: in some of its cases the official order differs from the
    # "later first" rule a stable sort would give, both for scores and for tIoUs.
    score_differs = tiou_differs = 0
    for seed in range(400):
        gt, pred = grid_case(np.random.default_rng(seed))
        for dets in pred["results"].values():
            scores = np.array([d["score"] for d in dets], np.float64)
            if len(scores) and not np.array_equal(
                np.argsort(scores)[::-1], np.argsort(scores, kind="stable")[::-1]
            ):
                score_differs += 1
        for vid, entry in gt["database"].items():
            segs = np.array([a["segment"] for a in entry["annotations"]]).reshape(-1, 2)
            for d in pred["results"].get(vid, []):
                tiou = detection_eval.segment_iou(np.array(d["segment"], float), segs)
                if not np.array_equal(np.argsort(tiou), np.argsort(tiou, kind="stable")):
                    tiou_differs += 1
    assert score_differs > 10 and tiou_differs > 10, (score_differs, tiou_differs)


def test_agrees_with_reference_on_a_larger_case_with_subsets_and_unknowns():
    rng = np.random.default_rng(1234)
    classes = [f"c{i}" for i in range(8)]
    gt_videos, pred_videos = {}, {}
    for v in range(60):
        duration = float(rng.uniform(20, 200))
        anns = []
        for _ in range(rng.integers(1, 6)):
            s = rng.uniform(0, duration * 0.8)
            anns.append(
                (str(rng.choice(classes[:6])), s, min(duration, s + rng.uniform(1, duration / 3)))
            )
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
    assert_same(fast, ref)


@pytest.mark.skipif(
    not os.path.isfile(f"{THUMOS14}/subset.npy"), reason="real THUMOS14 folder absent"
)
@pytest.mark.parametrize("snap_ground_truth", [False, True])
def test_agrees_with_reference_on_real_thumos14_with_snippet_grid_predictions(snap_ground_truth):
    # The issue's case: the real THUMOS14 test GT (210 videos, 3234 segments, up to 218 of
    # one class in one video) and predictions on a 16-frame / 25 fps snippet grid, so that
    # they share end points, with 2-decimal scores. Variant: the GT snapped to that grid
    # too, which makes equal tIoUs common.
    from avloc_jax.data import annotations as ann

    gt = ann.wtalc_ground_truth(ann.read_layout(THUMOS14, "thumos14"), "thumos14", ["test"])
    step = 16 / 25
    rng = np.random.default_rng(14)
    results = {}
    for vid, entry in gt["database"].items():
        if snap_ground_truth:
            for a in entry["annotations"]:
                s, e = (round(x / step) for x in a["segment"])
                a["segment"] = [s * step, max(e, s + 1) * step]
        labels = sorted({a["label"] for a in entry["annotations"]})
        dets = []
        for a in entry["annotations"]:
            s, e = (round(x / step) for x in a["segment"])
            for _ in range(3):
                ds, de = rng.integers(-2, 3, 2)
                lab = a["label"] if rng.random() < 0.9 else str(rng.choice(labels))
                dets.append((lab, s + ds, max(e + de, s + ds + 1)))
        for _ in range(len(entry["annotations"])):  # background
            s = int(rng.integers(0, max(2, int(entry["duration"] / step))))
            dets.append((str(rng.choice(labels)), s, s + int(rng.integers(1, 20))))
        results[vid] = [
            {
                "label": lab,
                "score": float(np.round(rng.random(), 2)),
                "segment": [s * step, e * step],
            }
            for lab, s, e in dets
        ]
    pred = {"version": "t", "results": results, "external_data": {}}
    thresholds = ann.LAYOUTS["thumos14"].tiou_thresholds
    fast = quiet_evaluate(gt, pred, thresholds, subset="test")
    ref = reference_evaluate(gt, pred, thresholds, subset="test")
    assert fast["num_predictions"] > 10000
    assert_same(fast, ref)


# ---------------------------------------------------------------------------------------
# Exact messages, files and boundaries (each kills mutants that mutmut showed surviving;
# docs/testing.md).


@pytest.mark.parametrize(
    "ground_truth, message",
    [
        (
            {"videos": {}},
            "ground truth: no 'database' key (expected the ActivityNet GT JSON layout)",
        ),
        ([1, 2], "ground truth: no 'database' key (expected the ActivityNet GT JSON layout)"),
        ({"database": [1]}, "ground truth: 'database' must map video ids to entries"),
        (
            {"database": {"v1": ["A", 0, 1]}},
            "ground truth, video 'v1': expected an object with 'subset' and 'annotations'; "
            "got ['A', 0, 1]",
        ),
    ],
)
def test_malformed_ground_truth_top_level_messages(ground_truth, message):
    with pytest.raises(DetectionFormatError) as info:
        evaluate_detections(ground_truth, make_pred({}), [0.5])
    assert str(info.value) == message
    assert info.value.source == "ground truth"
    assert info.value.where == ("video 'v1'" if "video 'v1'" in message else "")


def test_ground_truth_subset_and_annotation_messages():
    gt = make_gt({"v1": [("A", 0, 10)]}, subset="validation")
    gt["database"]["v2"] = {"subset": "training", "annotations": []}
    with pytest.raises(ValueError) as info:
        evaluate_detections(gt, make_pred({}), [0.5], subset="testing")
    assert str(info.value) == (
        "ground truth has no video in subset 'testing'; subsets present: ['training', 'validation']"
    )
    with pytest.raises(ValueError) as info:
        evaluate_detections(gt, make_pred({}), [0.5], subset="training")
    assert (
        str(info.value) == "ground truth has no annotation in subset 'training'; mAP is undefined"
    )


def test_ground_truth_video_without_annotations_key_has_none():
    # ActivityNet's test videos have no "annotations" key: they count as videos without GT.
    gt = make_gt({"v1": [("A", 0, 10)]})
    gt["database"]["v2"] = {"subset": "validation", "duration": 5.0}
    pred = make_pred({"v1": [("A", 0.9, 0, 10)], "v2": [("A", 0.95, 0, 5)]})
    result = evaluate_detections(gt, pred, [0.5])
    # v2's prediction is a FP visited first: prec [0, .5], rec [0, 1] -> AP .5.
    assert result["mAP"] == [0.5] and result["num_videos"] == 2


def test_unhashable_ground_truth_label_names_the_annotation():
    gt = make_gt({"v1": [("A", 0, 10)], "v2": [("A", 0, 10), ("A", 1, 2)]})
    gt["database"]["v2"]["annotations"][1]["label"] = ["A"]
    with pytest.raises(DetectionFormatError) as info:
        evaluate_detections(gt, make_pred({}), [0.5])
    assert str(info.value) == (
        "ground truth, video 'v2', annotation 1 (0-based): 'label' must be a string; got ['A']"
    )


@pytest.mark.parametrize(
    "entry, problem",
    [
        ({}, "no 'label' key (keys present: none)"),
        (7, "expected an object with 'label', 'score', 'segment'; got 7"),
        ({"label": {"A"}, "score": 1.0, "segment": [0, 1]}, "'label' must be a string; got {'A'}"),
        (
            {"label": "A", "score": 1.0, "segment": (0, 1, 2)},
            "'segment' must be [start, end], two numbers; got (0, 1, 2)",
        ),
        # repr() of at most 60 characters is shown whole; a longer one is cut to 57 + "...".
        (
            {"label": "A", "score": "x" * 58, "segment": [0, 1]},
            "'score' must be a number; got '" + "x" * 58 + "'",
        ),
        (
            {"label": "A", "score": "x" * 59, "segment": [0, 1]},
            "'score' must be a number; got '" + "x" * 56 + "...",
        ),
    ],
)
def test_malformed_prediction_full_messages(entry, problem):
    gt = make_gt({"v1": [("A", 0, 10)]})
    with pytest.raises(DetectionFormatError) as info:
        evaluate_detections(gt, {"results": {"v1": [entry]}}, [0.5])
    assert str(info.value) == f"predictions, video 'v1', entry 0 (0-based): {problem}"


def test_non_list_prediction_entries_full_message():
    gt = make_gt({"v1": [("A", 0, 10)]})
    with pytest.raises(DetectionFormatError) as info:
        evaluate_detections(gt, {"results": {"v1": {"label": "A"}}}, [0.5])
    assert str(info.value) == "predictions, video 'v1': expected a list; got {'label': 'A'}"


def test_evaluate_detection_files_equals_the_in_memory_evaluation(tmp_path):
    # Subset and thresholds are passed through; a non-ASCII label survives the UTF-8 read.
    gt = make_gt({"v1": [("Café", 0, 10), ("B", 20, 30)], "v2": [("Café", 0, 4)]})
    gt["database"]["v2"]["subset"] = "training"
    pred = make_pred(
        {"v1": [("Café", 0.9, 1, 10), ("B", 0.8, 20, 26)], "v2": [("Café", 0.7, 0, 4)]}
    )
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt, ensure_ascii=False), encoding="utf-8")
    pred_path.write_text(json.dumps(pred, ensure_ascii=False), encoding="utf-8")
    from_files = quiet_file_evaluate(gt_path, pred_path, [0.5, 0.9], subset="validation")
    in_memory = quiet_evaluate(gt, pred, [0.5, 0.9], subset="validation")
    assert from_files == in_memory
    # tIoUs .9 and .6: Café AP [1, 1], B AP [1, 0].
    assert from_files["per_class_ap"] == {"Café": [1.0, 1.0], "B": [1.0, 0.0]}
    assert from_files["num_videos"] == 1


def test_json_files_are_read_as_utf8_whatever_the_locale(tmp_path, monkeypatch):
    # Simulate a Latin-1 locale: an `open` without an explicit encoding would decode the
    # UTF-8 bytes of "Café" as "CafÃ©".
    import builtins

    def latin1_default_open(path, *args, encoding=None, **kwargs):
        return builtins.open(path, *args, encoding=encoding or "latin-1", **kwargs)

    monkeypatch.setattr(activitynet_json, "open", latin1_default_open, raising=False)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(make_gt({"v1": [("Café", 0, 10)]}), ensure_ascii=False), "utf-8")
    data = activitynet_json.load_json(path)
    assert data["database"]["v1"]["annotations"][0]["label"] == "Café"


def quiet_file_evaluate(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetectionEvalWarning)
        return detection_eval.evaluate_detection_files(*args, **kwargs)


def test_load_json_messages_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(OSError) as info:
        activitynet_json.load_json(missing)
    assert str(info.value) == f"cannot read file {str(missing)!r}: No such file or directory"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        activitynet_json.load_json(bad, "predictions file")
    assert str(info.value).startswith(f"predictions file {str(bad)!r} is not valid JSON: ")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        activitynet_json.load_json(listed, "ground-truth file")
    assert str(info.value) == f"ground-truth file {str(listed)!r} does not hold a JSON object"


def test_evaluate_detection_files_names_each_file(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(make_gt({"v1": [("A", 0, 10)]})), encoding="utf-8")
    missing = tmp_path / "missing.json"
    with pytest.raises(OSError) as info:
        detection_eval.evaluate_detection_files(missing, good, [0.5])
    assert str(info.value).startswith(f"cannot read ground-truth file {str(missing)!r}: ")
    with pytest.raises(OSError) as info:
        detection_eval.evaluate_detection_files(good, missing, [0.5])
    assert str(info.value).startswith(f"cannot read predictions file {str(missing)!r}: ")


def test_parse_tiou_thresholds_single_value_range_and_message():
    assert detection_eval.parse_tiou_thresholds("0.5:0.5:1") == (0.5,)
    with pytest.raises(ValueError) as info:
        detection_eval.parse_tiou_thresholds("0.5:0.9")
    assert str(info.value) == (
        "bad tIoU specification '0.5:0.9': use START:STOP:NUM or a comma-separated list"
    )
    # The closed interval [0, 1]; values are rounded to 10 decimals.
    assert detection_eval.parse_tiou_thresholds("0,1") == (0.0, 1.0)
    assert detection_eval.parse_tiou_thresholds("0.12345678901") == (0.123456789,)
    for bad in ("-0.1,0.5", "0.5,1.01"):
        with pytest.raises(ValueError) as info:
            detection_eval.parse_tiou_thresholds(bad)
        assert str(info.value) == f"tIoU thresholds must lie in [0, 1]; got {bad!r}"


def test_json_integers_beyond_int64_are_accepted():
    # JSON integers have no size limit. A score of 10**20 makes the all-integer score
    # column overflow int64 (the sort then runs on float64), and a bound of 10**20 must
    # still parse as a float64 segment. Visiting order: 10**20 (TP), then 1 (FP) -> AP 1.
    gt = make_gt({"v1": [("A", 0, 10**20)]})
    pred = make_pred({"v1": [("A", 1, 5, 6), ("A", 10**20, 0, 10**20)]})
    result = evaluate_detections(gt, pred, [0.5])
    assert result["mAP"] == [1.0] and result["num_predictions"] == 2
    # 10**20 + 1 and 10**20 are equal as float64, so they tie, and the tie is broken like
    # any other (the later first, for two values): the TP at 10**20 is visited first -> AP 1.
    # (Compared as Python integers, the FP at 10**20 + 1 would come first: AP 1/2.)
    if np.argsort(np.array([1e20, 1e20])).tolist() != [0, 1]:
        pytest.skip("this numpy's argsort reorders two equal values")
    pred = make_pred({"v1": [("A", 10**20 + 1, 50, 60), ("A", 10**20, 0, 10**20)]})
    assert evaluate_detections(gt, pred, [0.5])["mAP"] == [1.0]


def test_non_finite_ground_truth_message():
    gt = make_gt({"v1": [("A", 0, float("inf"))]})
    with pytest.raises(ValueError) as info:
        evaluate_detections(gt, make_pred({}), [0.5])
    assert str(info.value) == "ground truth contains non-finite segment bounds"


def test_prediction_top_level_messages():
    gt = make_gt({"v1": [("A", 0, 10)]})
    with pytest.raises(DetectionFormatError) as info:
        evaluate_detections(gt, {"detections": {}}, [0.5])
    assert str(info.value) == (
        "predictions: no 'results' key (expected the ActivityNet prediction JSON layout)"
    )
    assert (info.value.source, info.value.where) == ("predictions", "")
    with pytest.raises(DetectionFormatError) as info:
        evaluate_detections(gt, {"results": [1, 2]}, [0.5])
    assert str(info.value) == (
        "predictions: 'results' must map video ids to lists of detections; got [1, 2]"
    )
    assert (info.value.source, info.value.where) == ("predictions", "")


def test_warnings_name_the_entry_and_list_the_unknown_labels():
    # The reversed segment is entry 1 of the second video; zero-length segments are not
    # reversed. Seven unknown labels: the warning shows the first five, sorted.
    gt = make_gt({"v1": [("A", 0, 10)], "v2": [("A", 0, 10)]})
    unknown = [(label, 0.1, 0, 1) for label in "GFEDCBZ"]
    pred = make_pred({"v1": [("A", 0.9, 0, 10), ("A", 0.5, 3, 3)] + unknown,
                      "v2": [("A", 0.8, 0, 10), ("A", 0.7, 9, 3)]})  # fmt: skip
    with pytest.warns(DetectionEvalWarning) as record:
        result = evaluate_detections(gt, pred, [0.5])
    messages = sorted(str(w.message) for w in record)
    assert messages[0].startswith(
        "1 prediction has a reversed segment, start > end "
        "(the first: video 'v2', entry 1 (0-based), [9.0, 3.0]);"
    )
    assert messages[1] == (
        "ignored 7 predictions whose label is not a ground-truth class "
        "(7 labels: B, C, D, E, F, ...)"
    )
    assert result["num_reversed_segments"] == 1
    # Three labels: all shown, no ellipsis.
    with pytest.warns(DetectionEvalWarning) as record:
        evaluate_detections(gt, make_pred({"v1": [("A", 0.9, 0, 10)] + unknown[4:]}), [0.5])
    assert [str(w.message) for w in record] == [
        "ignored 3 predictions whose label is not a ground-truth class (3 labels: B, C, Z)"
    ]


def test_warnings_point_at_the_caller_and_say_what_was_ignored():
    # All four warnings, each a DetectionEvalWarning attributed to the line that called
    # evaluate_detections (this file), with its exact text.
    gt = make_gt({"v1": [("A", 0, 10)]})
    pred = make_pred(
        {
            "v1": [("A", 0.9, 0, 10), ("A", float("nan"), 0, 1), ("A", 0.3, 0, float("inf"))]
            + [("A", 0.2, 7, 2), ("Z", 0.1, 0, 1)],
            "nope": [("A", 0.5, 0, 1)],
        }
    )
    with pytest.warns(DetectionEvalWarning) as record:
        result = evaluate_detections(gt, pred, [0.5])
    assert all(w.category is DetectionEvalWarning for w in record)
    # Under mutation testing (docs/testing.md) every function is wrapped in a trampoline,
    # which adds stack frames; the attribution can only be checked on the plain module.
    if not any("__mutmut_" in name for name in vars(detection_eval)):
        assert {w.filename for w in record} == {__file__}
    assert [str(w.message) for w in record] == [
        "ignored 1 prediction whose label is not a ground-truth class (1 label: Z)",
        "ignored 1 prediction on 1 video absent from the evaluated ground truth",
        "ignored 2 predictions with a non-finite score or segment "
        "(the first: video 'v1', entry 1 (0-based))",
        "1 prediction has a reversed segment, start > end (the first: video 'v1', entry 3 "
        "(0-based), [7.0, 2.0]); they are scored as the official code scores them: tIoU 0 "
        "with every ground truth, so false positives at any threshold above 0",
    ]
    assert result["num_ground_truth"] == 1 and result["tiou_thresholds"] == [0.5]


@pytest.mark.parametrize("count, ellipsis", [(5, False), (6, True)])
def test_unknown_label_list_is_cut_after_five(count, ellipsis):
    gt = make_gt({"v1": [("A", 0, 10)]})
    labels = "BCDEFG"[:count]
    pred = make_pred({"v1": [(label, 0.1, 0, 1) for label in labels]})
    with pytest.warns(DetectionEvalWarning) as record:
        evaluate_detections(gt, pred, [0.5])
    shown = ", ".join(labels[:5]) + (", ..." if ellipsis else "")
    assert str(record[0].message) == (
        f"ignored {count} predictions whose label is not a ground-truth class "
        f"({count} labels: {shown})"
    )


def test_thresholds_scalar_or_empty_and_reported():
    gt = make_gt({"v1": [("A", 0, 10)]})
    pred = make_pred({"v1": [("A", 0.9, 0, 8)]})  # tIoU 0.8
    result = evaluate_detections(gt, pred, 0.5)  # a bare number is one threshold
    assert result["tiou_thresholds"] == [0.5] and result["mAP"] == [1.0]
    assert evaluate_detections(gt, pred, (0.9, 0.5))["tiou_thresholds"] == [0.9, 0.5]
    with pytest.raises(ValueError) as info:
        evaluate_detections(gt, pred, [])
    assert str(info.value) == "at least one tIoU threshold is needed"


def test_segment_iou_computes_in_float64_whatever_the_input_dtype():
    # float32 bounds are widened first, so the tIoU is the float64 one, bit for bit.
    a32 = np.array([[0.1, 0.7], [1.3, 2.9]], np.float32)
    b32 = np.array([[0.2, 0.9], [1.1, 2.2]], np.float32)
    expected = detection_eval.segment_iou(a32.astype(np.float64), b32.astype(np.float64))
    for a, b in ((a32, b32), (a32, b32.astype(np.float64)), (a32.astype(np.float64), b32)):
        got = detection_eval.segment_iou(a, b)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expected)
