"""AVE labelling and accuracy: hand-worked cases."""
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
    np.testing.assert_array_equal(ave_metrics.gated_snippet_labels(scores, mu, theta=0.9), [[2, 2, 1]])
    np.testing.assert_array_equal(ave_metrics.gated_snippet_labels(scores, mu, theta=0.0), [[1, 1, 1]])


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
    assert np.isnan(ave_metrics.segment_accuracy(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2), bool)))
