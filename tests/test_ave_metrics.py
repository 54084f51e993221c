"""AVE labelling and accuracy: hand-worked cases and a randomized loop reference."""

import math

import numpy as np
import pytest

from avloc_jax.evaluation import ave_metrics


def test_gated_labels_use_top_class_where_reliable():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])  # top classes 1 and 0
    mu = np.array([[0.9, 0.5, 0.49, 0.0], [0.2, 0.8, 0.6, 0.51]])
    labels = ave_metrics.gated_snippet_labels(scores, mu, theta=0.5)
    # mu >= 0.5 -> top class; else background = C = 3 (0.5 itself counts as foreground).
    np.testing.assert_array_equal(labels, [[1, 1, 3, 3], [3, 0, 0, 0]])
    assert labels.dtype == np.int64


def test_gated_labels_theta_changes_gate():
    scores = np.array([[0.2, 0.8]])
    mu = np.array([[0.3, 0.6, 0.95]])
    np.testing.assert_array_equal(
        ave_metrics.gated_snippet_labels(scores, mu, theta=0.9), [[2, 2, 1]]
    )
    np.testing.assert_array_equal(
        ave_metrics.gated_snippet_labels(scores, mu, theta=0.0), [[1, 1, 1]]
    )


def test_ungated_labels_argmax_with_background_last():
    post = np.array([[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]])  # C = 2, background index 2
    np.testing.assert_array_equal(ave_metrics.ungated_snippet_labels(post), [[2, 0]])


def test_segment_accuracy_counts_background_and_respects_mask():
    pred = np.array([[0, 0, 3, 3], [1, 1, 1, 9]])
    target = np.array([[0, 1, 3, 3], [1, 2, 1, 0]])
    # Unmasked: matches 0,3,3 | 1,1 -> 5 of 8.
    assert ave_metrics.segment_accuracy(pred, target) == pytest.approx(5 / 8)
    # The last snippet of video 2 is padding: 5 of 7.
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
    assert ave_metrics.segment_accuracy(pred, target, mask) == pytest.approx(5 / 7)


def test_segment_accuracy_ave_test_split_size():
    # 402 videos x 10 snippets, every 4th snippet wrong -> the denominator must be 4020.
    rng = np.random.default_rng(0)
    target = rng.integers(0, 29, size=(402, 10))
    pred = target.copy()
    wrong = np.zeros_like(pred, bool)
    wrong.reshape(-1)[::4] = True
    pred[wrong] = (pred[wrong] + 1) % 29
    assert ave_metrics.segment_accuracy(pred, target) == pytest.approx(1 - wrong.sum() / 4020)
    assert wrong.sum() == 1005


def test_segment_accuracy_shape_errors_and_empty_mask():
    with pytest.raises(ValueError):
        ave_metrics.segment_accuracy(np.zeros((2, 3)), np.zeros((2, 4)))
    assert np.isnan(
        ave_metrics.segment_accuracy(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2), bool))
    )


# ---------------------------------------------------------------------------------------
# Randomized agreement with a plain transcription of METHOD_NOTES §4-5 (AVE): c* = argmax of
# the video score (the first class among equal maxima), snippet t labelled c* iff μ_t >= θ,
# else background C; accuracy = correct valid snippets / valid snippets.


def _ref_first_argmax(values):
    best = 0
    for c in range(1, len(values)):
        if values[c] > values[best]:
            best = c
    return best


def _ref_gated(scores, mu, theta):
    labels = []
    for n in range(len(scores)):
        top = _ref_first_argmax([float(x) for x in scores[n]])
        labels.append([top if float(m) >= theta else len(scores[n]) for m in mu[n]])
    return labels


def _ref_accuracy(pred, target, mask):
    valid = correct = 0
    for n in range(len(pred)):
        for t in range(len(pred[n])):
            if mask[n][t]:
                valid += 1
                correct += int(pred[n][t] == target[n][t])
    return correct / valid if valid else float("nan")


THETAS = [0.5, 0.7, 0.3, 0.1, 0.0, 1.0, 0.45]


def _grid_reliability(rng, shape, theta, dtype):
    # Values at θ, at the float32 rounding of θ and its neighbours, and on a coarse grid.
    theta32 = np.float32(theta)
    near = [theta, theta32, np.nextafter(theta32, np.float32(0)), np.nextafter(theta32, 1)]
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    mu = rng.choice(np.asarray(near + grid, np.float64), size=shape)
    return mu.astype(dtype)


@pytest.mark.parametrize("seed", range(300))
def test_agrees_with_loop_reference_on_tied_and_threshold_cases(seed):
    rng = np.random.default_rng(seed)
    n, c, t = int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 12))
    dtype = [np.float32, np.float64][seed % 2]
    theta = THETAS[seed % len(THETAS)]
    scores = (rng.integers(0, 3, size=(n, c)) / 2).astype(dtype)  # many equal maxima
    mu = _grid_reliability(rng, (n, t), theta, dtype)
    gated = ave_metrics.gated_snippet_labels(scores, mu, theta)
    assert gated.tolist() == _ref_gated(scores, mu, theta)

    posterior = (rng.integers(0, 3, size=(n, t, c + 1)) / 4).astype(dtype)
    ungated = ave_metrics.ungated_snippet_labels(posterior)
    assert ungated.tolist() == [[_ref_first_argmax(list(p)) for p in row] for row in posterior]

    target = rng.integers(0, c + 1, size=(n, t))
    mask = rng.random((n, t)) < 0.8
    for pred in (gated, ungated):
        expected = _ref_accuracy(pred.tolist(), target.tolist(), mask.tolist())
        got = ave_metrics.segment_accuracy(pred, target, mask)
        assert (math.isnan(got) and math.isnan(expected)) or abs(got - expected) <= 1e-12


def test_gate_compares_float32_reliability_exactly():
    # float32(0.7) = 0.699999988 < 0.7: background. NumPy 2 would otherwise round θ = 0.7
    # to float32 and call it foreground.
    mu = np.array([[0.7, 0.70000005]], np.float32)
    labels = ave_metrics.gated_snippet_labels(np.array([[0.1, 0.9]], np.float32), mu, theta=0.7)
    assert labels.tolist() == [[2, 1]]


def test_ties_take_the_lowest_class():
    labels = ave_metrics.gated_snippet_labels(np.array([[0.4, 0.4, 0.2]]), np.array([[1.0]]))
    assert labels[0, 0] == 0
    assert ave_metrics.ungated_snippet_labels(np.array([[[0.2, 0.4, 0.4]]]))[0, 0] == 1


# ---------------------------------------------------------------------------------------
# Input checks and dtypes (these kill mutants that mutmut showed surviving, docs/testing.md).


@pytest.mark.parametrize(
    "scores_shape, mu_shape",
    [((2, 3), (3, 4)), ((2, 3, 1), (2, 4)), ((2, 3), (2, 4, 1)), ((3,), (3, 4))],
)
def test_gated_labels_reject_bad_shapes_with_both_shapes_named(scores_shape, mu_shape):
    # Each check alone must raise: a mismatch in N with both ranks right, or one wrong rank.
    with pytest.raises(ValueError) as info:
        ave_metrics.gated_snippet_labels(np.zeros(scores_shape), np.zeros(mu_shape))
    assert str(info.value) == (
        f"expected video_scores [N, C] and reliability [N, T]; got {scores_shape}, {mu_shape}"
    )


def test_ungated_labels_reject_a_non_3d_posterior_and_return_int64():
    with pytest.raises(ValueError) as info:
        ave_metrics.ungated_snippet_labels(np.zeros((2, 3)))
    assert str(info.value) == "expected posterior [N, T, C+1]; got shape (2, 3)"
    labels = ave_metrics.ungated_snippet_labels(np.array([[[0.1, 0.9]]], np.float32))
    assert labels.dtype == np.int64 and labels.tolist() == [[1]]


def test_segment_accuracy_error_messages():
    with pytest.raises(ValueError) as info:
        ave_metrics.segment_accuracy(np.zeros((2, 3)), np.zeros((2, 4)))
    assert str(info.value) == "pred (2, 3) and target (2, 4) differ in shape"
    with pytest.raises(ValueError) as info:
        ave_metrics.segment_accuracy(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 4), bool))
    assert str(info.value) == "mask (2, 4) does not match pred (2, 3)"


def test_segment_accuracy_accepts_a_float_or_integer_mask():
    # A 0/1 float mask (as padding masks often come) and a 0/2 integer mask mean the same
    # valid snippets as the boolean one: 2 of the 3 valid snippets are right.
    pred, target = np.array([[0, 1, 2, 2]]), np.array([[0, 1, 1, 0]])
    for mask in ([[1.0, 1.0, 1.0, 0.0]], [[2, 2, 2, 0]], [[True, True, True, False]]):
        assert ave_metrics.segment_accuracy(pred, target, np.asarray(mask)) == pytest.approx(2 / 3)
