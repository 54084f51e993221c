"""Localization post-processing: steps, recovery of known segments, NMS, top-N, edge cases."""

import math

import numpy as np
import pytest

from avloc_jax.data.records import ground_truth_json
from avloc_jax.evaluation import detection_eval, localization
from configs import default


def config(**overrides):
    cfg = default.localization_config()
    cfg.update(overrides)
    return cfg


def step_cas(num_snippets, segments, num_classes=3, active_class=1, seed=0, noise=0.02):
    """A CAS of 0.05 background and 0.9 inside `segments` (snippet [a, b)) for one class."""
    rng = np.random.default_rng(seed)
    cas = 0.05 + noise * rng.random((num_snippets, num_classes))
    for a, b in segments:
        cas[a:b, active_class] = 0.9 + noise * rng.random(b - a)
    return cas


# ---------------------------------------------------------------------------------------
# Steps


def test_default_config_holds_every_constant():
    cfg = default.get_config().localization
    assert cfg.class_threshold == 0.1 and cfg.upsample == 24 and cfg.outer_margin == 0.25
    assert cfg.video_score_weight == 0.2 and cfg.nms == "soft" and cfg.soft_nms_sigma == 0.3
    assert cfg.nms_iou == 0.7 and cfg.top_n == 100 and cfg.cas_smoothing == 0
    np.testing.assert_allclose(cfg.thresholds, np.arange(0.1, 1.0, 0.1))


def test_upsample_is_centre_aligned_and_clamped():
    np.testing.assert_allclose(
        localization.upsample(np.array([[0.0, 1.0]]), 2), [[0.0, 0.25, 0.75, 1.0]]
    )
    np.testing.assert_allclose(localization.upsample(np.array([[0.3]]), 4), [[0.3] * 4])
    np.testing.assert_allclose(localization.upsample(np.array([[1.0, 3.0]]), 1), [[1.0, 3.0]])


def test_minmax_normalize_and_constant_rows():
    out = localization.minmax_normalize(np.array([[2.0, 4.0, 3.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(out, [[0.0, 1.0, 0.5], [1.0, 1.0, 1.0]])


def test_smooth_moving_average_over_existing_neighbours():
    x = np.array([[0.0, 3.0, 0.0, 0.0, 6.0]])
    # window 3: edges average 2 values, interior 3.
    np.testing.assert_allclose(localization.smooth(x, 3), [[1.5, 1.0, 1.0, 2.0, 3.0]])
    np.testing.assert_allclose(localization.smooth(x, 0), x)
    np.testing.assert_allclose(localization.smooth(x, 1), x)


def test_threshold_runs_end_exclusive_for_all_thresholds():
    cas = np.array([[0.0, 0.6, 0.9, 0.2, 0.7, 0.7]])
    rows, starts, ends = localization.threshold_runs(cas, [0.5, 0.8])
    # thr 0.5: [1,3) and [4,6); thr 0.8: [2,3).
    assert list(zip(rows, starts, ends)) == [(0, 1, 3), (0, 4, 6), (0, 2, 3)]


def test_outer_inner_contrast_hand_worked():
    row = np.array([[0.0, 0.5, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0]])
    # Run [4,8): inner 1; margin ceil(.25*4)=1 -> outer = mean(row[3], row[8]) = .25.
    # Run [0,4): inner .125; left margin clipped away, right = row[4] = 1 -> -.875.
    # Run [1,2) with margin 0: no outer region -> contrast = inner = .5.
    got = localization.outer_inner_contrast(
        row, np.array([0, 0]), np.array([4, 0]), np.array([8, 4]), 0.25
    )
    np.testing.assert_allclose(got, [0.75, -0.875])
    got0 = localization.outer_inner_contrast(row, np.array([0]), np.array([1]), np.array([2]), 0.0)
    np.testing.assert_allclose(got0, [0.5])
    # Whole-video run: the outer region is empty on both sides.
    np.testing.assert_allclose(
        localization.outer_inner_contrast(row, np.array([0]), np.array([0]), np.array([12]), 0.25),
        [row.mean()],
    )


# ---------------------------------------------------------------------------------------
# NMS


def test_hard_nms_removes_overlaps():
    starts, ends = np.array([0, 1, 20]), np.array([10, 11, 30])
    scores = np.array([1.0, 0.9, 0.5])
    kept, kept_scores = localization.nms(starts, ends, scores, "hard", iou=0.7, sigma=0.3, limit=0)
    assert list(kept) == [0, 2]  # tIoU([0,10),[1,11)) = 9/11 > 0.7
    np.testing.assert_allclose(kept_scores, [1.0, 0.5])
    kept, _ = localization.nms(starts, ends, scores, "hard", iou=0.85, sigma=0.3, limit=0)
    assert list(kept) == [0, 1, 2]  # 9/11 = 0.818 <= 0.85 is kept


def test_soft_nms_decays_instead_of_removing():
    starts, ends = np.array([0, 1, 20, 0]), np.array([10, 11, 30, 10])
    scores = np.array([1.0, 0.9, 0.5, -0.2])
    kept, kept_scores = localization.nms(starts, ends, scores, "soft", iou=0.7, sigma=0.3, limit=0)
    iou = 9 / 11
    decayed = 0.9 * math.exp(-(iou**2) / 0.3)  # ~0.0967, below the disjoint 0.5
    # The negative duplicate of [0,10) (tIoU 1) moves further down, not towards 0; then it
    # is decayed again by [1,11) (tIoU 9/11).
    neg = -0.2 - (1 - math.exp(-1 / 0.3)) * 0.2
    neg = neg - (1 - math.exp(-(iou**2) / 0.3)) * abs(neg)
    assert list(kept) == [0, 2, 1, 3]
    np.testing.assert_allclose(kept_scores, [1.0, 0.5, decayed, neg])
    # limit stops early without changing the first picks.
    kept2, scores2 = localization.nms(starts, ends, scores, "soft", iou=0.7, sigma=0.3, limit=2)
    assert list(kept2) == [0, 2]
    np.testing.assert_allclose(scores2, kept_scores[:2])


# ---------------------------------------------------------------------------------------
# localize


@pytest.mark.parametrize("nms", ["hard", "soft"])
def test_recovers_known_segments(nms):
    segments = [(10, 22), (30, 42), (60, 75)]  # snippets
    cas = step_cas(80, segments)
    duration = 160.0  # 2 s per snippet
    dets = localization.localize(cas, np.array([0.02, 0.95, 0.03]), duration, config(nms=nms))
    assert dets and all(c == 1 for c, *_ in dets)  # classes 0 and 2 are below class_threshold
    top = dets[: len(segments)]
    truth = np.array([[2.0 * a, 2.0 * b] for a, b in segments])
    for s_true, e_true in truth:
        best = max(
            detection_eval.segment_iou([[s, e]], [[s_true, e_true]])[0] for _, _, s, e in top
        )
        assert best > 0.9, (s_true, e_true, top)
    scores = [d[1] for d in dets]
    assert scores == sorted(scores, reverse=True)


def test_recovered_segments_score_full_map():
    segments = [(10, 22), (30, 42)]
    cas = step_cas(50, segments, seed=3)
    dets = localization.localize(cas, np.array([0.02, 0.95, 0.03]), 50.0, config(nms="hard"))
    record = {
        "video_id": "vid",
        "duration": 50.0,
        "segments": np.array(segments, np.float32),
        "segment_labels": np.array([1, 1]),
    }
    names = ["a", "b", "c"]
    gt = ground_truth_json([record], names, "validation")
    pred = localization.detections_to_json({"vid": dets}, names)
    result = detection_eval.evaluate_detections(gt, pred, [0.5, 0.7, 0.9], subset="validation")
    np.testing.assert_allclose(result["mAP"], [1.0, 1.0, 1.0])


def test_hard_nms_output_has_no_overlap_above_threshold():
    rng = np.random.default_rng(7)
    cas = np.cumsum(rng.normal(size=(120, 2)), axis=0)  # a wandering CAS with many runs
    dets = localization.localize(cas, np.array([0.6, 0.4]), 240.0, config(nms="hard", nms_iou=0.5))
    for c in (0, 1):
        segs = np.array([[s, e] for k, _, s, e in dets if k == c])
        if len(segs) > 1:
            iou = localization._pairwise_iou(segs[:, 0], segs[:, 1])
            np.fill_diagonal(iou, 0)
            assert iou.max() <= 0.5 + 1e-12
    soft = localization.localize(cas, np.array([0.6, 0.4]), 240.0, config(nms="soft", top_n=0))
    assert len(soft) > len(dets)  # soft-NMS keeps the overlapping proposals, decayed


def test_top_n_keeps_the_best():
    segments = [(i * 10, i * 10 + 5) for i in range(12)]
    cas = step_cas(120, segments, noise=0.3, seed=1)
    all_dets = localization.localize(cas, np.array([0.05, 0.9, 0.05]), 120.0, config(top_n=0))
    top5 = localization.localize(cas, np.array([0.05, 0.9, 0.05]), 120.0, config(top_n=5))
    assert len(all_dets) > 5 and len(top5) == 5
    assert top5 == all_dets[:5]


def test_class_selection_and_fallback_to_top_class():
    cas = step_cas(30, [(5, 15)])
    scores = np.array([0.3, 0.5, 0.2])
    assert {c for c, *_ in localization.localize(cas, scores, 30.0, config())} == {0, 1, 2}
    assert {
        c for c, *_ in localization.localize(cas, scores, 30.0, config(class_threshold=0.4))
    } == {1}
    # Every class rejected -> the top class only.
    assert {
        c for c, *_ in localization.localize(cas, np.array([0.01, 0.05, 0.02]), 30.0, config())
    } == {1}


def test_single_snippet_and_constant_cas_give_the_whole_video():
    for cas in (np.array([[0.2, 0.7]]), np.full((9, 2), 0.4)):
        dets = localization.localize(cas, np.array([0.05, 0.95]), 12.5, config())
        assert len(dets) == 1
        c, score, s, e = dets[0]
        assert c == 1 and s == 0.0 and e == pytest.approx(12.5)
        # A constant CAS normalises to 1: inner mean 1, no outer region (0), plus γ·0.95.
        assert score == pytest.approx(1.0 + 0.2 * 0.95)


def test_empty_inputs_and_errors():
    assert localization.localize(np.zeros((0, 3)), np.ones(3) / 3, 10.0, config()) == []
    with pytest.raises(ValueError):
        localization.localize(np.zeros((4, 3)), np.ones(2), 10.0, config())
    with pytest.raises(ValueError):
        localization.localize(np.zeros((4, 2)), np.ones(2), float("nan"), config())
    with pytest.raises(ValueError):
        localization.localize(np.zeros((4, 2)), np.ones(2), 1.0, config(nms="fancy"))


def test_times_scale_with_duration_and_min_length():
    cas = step_cas(40, [(10, 20), (30, 32)])
    short = localization.localize(cas, np.array([0.0, 1.0, 0.0]), 40.0, config(nms="hard"))
    long = localization.localize(cas, np.array([0.0, 1.0, 0.0]), 80.0, config(nms="hard"))
    np.testing.assert_allclose([d[2:] for d in long], [tuple(2 * x for x in d[2:]) for d in short])
    # The 2-snippet bump disappears with min_length_snippets = 3.
    filtered = localization.localize(
        cas, np.array([0.0, 1.0, 0.0]), 40.0, config(nms="hard", min_length_snippets=3)
    )
    assert all(e - s >= 3 - 1e-9 for _, _, s, e in filtered)
    assert any(e - s < 3 for _, _, s, e in short)


def test_smoothing_merges_a_one_snippet_dip():
    cas = step_cas(40, [(10, 30)], noise=0.0)
    cas[20, 1] = 0.05  # one dropped snippet splits the action at every threshold
    split = localization.localize(cas, np.array([0.0, 1.0, 0.0]), 40.0, config(nms="hard"))
    merged = localization.localize(
        cas, np.array([0.0, 1.0, 0.0]), 40.0, config(nms="hard", cas_smoothing=3)
    )

    def best(dets):
        return max(detection_eval.segment_iou([[s, e]], [[10, 30]])[0] for _, _, s, e in dets)

    assert best(split) < 0.9 < best(merged)


def test_raw_contrast_option_changes_scores_not_segments():
    cas = step_cas(40, [(10, 20)])
    a = localization.localize(cas, np.array([0.0, 1.0, 0.0]), 40.0, config(nms="hard"))
    b = localization.localize(
        cas, np.array([0.0, 1.0, 0.0]), 40.0, config(nms="hard", contrast_on="raw")
    )
    assert a[0][2:] == pytest.approx(b[0][2:])
    assert a[0][1] > b[0][1]  # raw CAS spans 0.05..0.92, the normalised one 0..1


def test_localize_videos_and_json_layout():
    cas = step_cas(20, [(5, 12)])
    per_video = localization.localize_videos(
        [
            ("a", cas, np.array([0.0, 1.0, 0.0]), 20.0),
            ("b", cas[:0], np.array([0.0, 1.0, 0.0]), 5.0),
        ],
        config(),
    )
    assert set(per_video) == {"a", "b"} and per_video["b"] == []
    out = localization.detections_to_json(per_video, ["x", "y", "z"], version="v1")
    assert out["version"] == "v1" and set(out) == {"version", "results", "external_data"}
    first = out["results"]["a"][0]
    assert (
        first["label"] == "y" and len(first["segment"]) == 2 and isinstance(first["score"], float)
    )
    assert out["results"]["b"] == []


def test_config_is_read_as_given_without_fallbacks():
    # A config lacking a key is an error, not silently today's default: old saved configs
    # are upgraded by config_migration before they get here.
    partial = config()
    del partial["top_n"]
    with pytest.raises(AttributeError):
        localization.localize(step_cas(30, [(5, 15)]), np.array([0.0, 1.0, 0.0]), 30.0, partial)
