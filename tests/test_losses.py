"""The weakly-supervised losses: finiteness, gradients, minima on constructed cases, and
every loss term against values worked out by hand (second half of the file)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from avloc_jax import losses
from avloc_jax import model as models
from avloc_jax.model import scores
from configs import default

B, T, C = 3, 16, 4


def _loss_config(**overrides):
    config = ml_collections.ConfigDict(
        dict(
            topk_ratio=8.0,
            mil_weight=1.0,
            fg_weight=1.0,
            rel_weight=1.0,
            class_consistency_weight=1.0,
            reliability_consistency_weight=1.0,
            consistency_window=1,
            consistency_threshold=0.3,
            consistency_warmup_steps=0,
            # The rule and weight these tests were written for (not today's defaults).
            pseudo_label_rule="class_argmax",
            rel_background_weight=1.0,
        )
    )
    config.update(overrides)
    return config


def _batch():
    mask = np.ones((B, T), bool)
    mask[2, 10:] = False
    labels = np.zeros((B, C), np.float32)
    labels[0, 1] = 1
    labels[1, [0, 3]] = 1  # two classes
    # video 2 is background-only (all-zero labels)
    return mask, labels


def _outputs_from_logits(class_logits, reliability_logits, mask):
    class_logits = jnp.asarray(class_logits) * mask[..., None]
    reliability_logits = jnp.asarray(reliability_logits) * mask
    return {
        "class_logits": class_logits,
        "reliability_logits": reliability_logits,
        "posterior": models.open_set_posterior(class_logits, reliability_logits) * mask[..., None],
    }


def _ideal_and_wrong():
    """Ideal outputs: action class high and μ high inside snippets 4..11 of the labelled
    videos, μ low elsewhere and everywhere in the background-only video. Wrong outputs:
    a wrong class, and μ inverted."""
    mask, labels = _batch()
    inside = np.zeros((B, T), bool)
    inside[:2, 4:12] = True
    ideal_class = np.full((B, T, C), -5.0, np.float32)
    ideal_class[0, :, 1] = 5.0
    ideal_class[1, :8, 0] = 5.0
    ideal_class[1, 8:, 3] = 5.0
    ideal_rel = np.where(inside, 6.0, -6.0).astype(np.float32)
    wrong_class = np.full((B, T, C), -5.0, np.float32)
    wrong_class[:, :, 2] = 5.0
    wrong_rel = -ideal_rel
    return mask, labels, (ideal_class, ideal_rel), (wrong_class, wrong_rel)


def test_topk_mean_matches_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(B, T, C)).astype(np.float32)
    mask, _ = _batch()
    k = scores.topk_count(jnp.asarray(mask), 8.0)
    np.testing.assert_array_equal(np.asarray(k), [2, 2, 1])
    got = np.asarray(scores.topk_mean(jnp.asarray(values), jnp.asarray(mask), k))
    got_low = np.asarray(scores.topk_mean(jnp.asarray(values), jnp.asarray(mask), k, largest=False))
    for b in range(B):
        valid = values[b][mask[b]]
        kb = int(k[b])
        np.testing.assert_allclose(got[b], np.sort(valid, axis=0)[::-1][:kb].mean(0), rtol=1e-6)
        np.testing.assert_allclose(got_low[b], np.sort(valid, axis=0)[:kb].mean(0), rtol=1e-6)


def test_smoothing_uses_valid_neighbours_only():
    values = np.arange(B * T, dtype=np.float32).reshape(B, T, 1)
    mask, _ = _batch()
    smoothed = np.asarray(losses.smooth_over_time(jnp.asarray(values), jnp.asarray(mask), 1))
    assert smoothed[0, 0, 0] == pytest.approx((values[0, 0, 0] + values[0, 1, 0]) / 2)
    assert smoothed[0, 5, 0] == pytest.approx(values[0, 4:7, 0].mean())
    # the last valid snippet of video 2 does not average in the padded snippet after it
    assert smoothed[2, 9, 0] == pytest.approx(values[2, 8:10, 0].mean())


@pytest.mark.parametrize(
    "term", ["mil", "fg", "rel", "class_consistency", "reliability_consistency"]
)
def test_each_loss_is_lower_for_ideal_predictions(term):
    mask, labels, ideal, wrong = _ideal_and_wrong()
    config = _loss_config()
    example_weight = jnp.ones((B,))
    _, ideal_terms = losses.total_loss(
        _outputs_from_logits(*ideal, mask), mask, labels, example_weight, config, 10
    )
    _, wrong_terms = losses.total_loss(
        _outputs_from_logits(*wrong, mask), mask, labels, example_weight, config, 10
    )
    assert np.isfinite(float(ideal_terms[term])) and np.isfinite(float(wrong_terms[term]))
    assert float(ideal_terms[term]) < float(wrong_terms[term]), (
        term,
        ideal_terms[term],
        wrong_terms[term],
    )
    assert float(ideal_terms["total"]) < float(wrong_terms["total"])


def test_background_only_video_pushes_reliability_down():
    mask, labels = _batch()
    k_config = _loss_config()
    rel = np.zeros((B, T), np.float32)
    low = rel.copy()
    low[2] = -6.0
    high = rel.copy()
    high[2] = 6.0
    weight = jnp.ones((B,))
    loss_low = losses.reliability_loss(
        jnp.asarray(low), jnp.asarray(mask), jnp.asarray(labels), weight, k_config.topk_ratio, 1.0
    )
    loss_high = losses.reliability_loss(
        jnp.asarray(high), jnp.asarray(mask), jnp.asarray(labels), weight, k_config.topk_ratio, 1.0
    )
    assert float(loss_low) < float(loss_high)


def _model_and_batch():
    mask, labels = _batch()
    rng = np.random.default_rng(0)
    visual = rng.normal(size=(B, T, 6)).astype(np.float32)
    audio = rng.normal(size=(B, T, 5)).astype(np.float32)
    # Ungated, so that every trunk parameter (the bilinear attention weights included) is
    # reached at initialisation; a zero gate would, rightly, block the bilinear weights.
    model_config = default.get_config().model
    model_config.update(embed_dim=8, dropout_rate=0.0, attention_window=0, attention_gate=False)
    model = models.build_model(model_config, num_classes=C)
    params = model.init(jax.random.key(0), visual, audio, mask)
    # Start with μ ≈ 0.95 so that the consistency pseudo-labels include action classes
    # (at μ ≈ 0.5 they are all background, and L_cc rightly never reaches the action branch).
    params["params"]["head"]["reliability"]["Dense_1"]["bias"] = jnp.full((1,), 3.0)
    return model, params, (visual, audio, mask, labels)


@pytest.mark.parametrize(
    "term,reaches_action,reaches_reliability",
    [
        ("mil", True, False),
        ("fg", True, True),
        ("rel", False, True),
        ("class_consistency", True, True),
        ("reliability_consistency", False, True),
    ],
)
def test_every_loss_is_finite_with_gradients_where_it_should_reach(
    term, reaches_action, reaches_reliability
):
    model, params, (visual, audio, mask, labels) = _model_and_batch()
    config = _loss_config(consistency_threshold=0.0)

    def term_value(params):
        outputs = model.apply(params, visual, audio, mask)
        _, terms = losses.total_loss(outputs, mask, labels, jnp.ones((B,)), config, 10)
        return terms[term]

    value, grads = jax.value_and_grad(term_value)(params)
    assert np.isfinite(float(value))
    flat = {
        jax.tree_util.keystr(path): np.asarray(g)
        for path, g in jax.tree_util.tree_leaves_with_path(grads)
    }
    assert all(np.isfinite(g).all() for g in flat.values())
    nonzero = {k for k, g in flat.items() if np.abs(g).max() > 0}
    action_head = {k for k in flat if "'action'" in k}
    reliability_head = {k for k in flat if "'reliability'" in k}
    shared = {k for k in flat if "'head'" not in k}
    assert (action_head <= nonzero) == reaches_action
    if not reaches_action:
        assert not (action_head & nonzero)
    assert (reliability_head <= nonzero) == reaches_reliability
    if not reaches_reliability:
        assert not (reliability_head & nonzero)
    # The shared trunk (embeddings, cross-attention) is reached by every term.
    assert shared <= nonzero, sorted(shared - nonzero)


def test_zero_weight_switches_a_term_off_and_warmup_delays_consistency():
    mask, labels, ideal, _ = _ideal_and_wrong()
    outputs = _outputs_from_logits(*ideal, mask)
    weight = jnp.ones((B,))
    _, terms = losses.total_loss(outputs, mask, labels, weight, _loss_config(fg_weight=0.0), 0)
    assert "fg" not in terms and "mil" in terms
    config = _loss_config(
        consistency_warmup_steps=100, mil_weight=0.0, fg_weight=0.0, rel_weight=0.0
    )
    early, _ = losses.total_loss(outputs, mask, labels, weight, config, 99)
    late, late_terms = losses.total_loss(outputs, mask, labels, weight, config, 100)
    assert float(early) == 0.0
    assert float(late) == pytest.approx(
        float(late_terms["class_consistency"] + late_terms["reliability_consistency"])
    )


def test_padded_examples_do_not_count():
    mask, labels, ideal, wrong = _ideal_and_wrong()
    config = _loss_config()
    mixed_class = ideal[0].copy()
    mixed_class[1] = wrong[0][1]
    mixed_rel = ideal[1].copy()
    mixed_rel[1] = wrong[1][1]
    weight = jnp.asarray([1.0, 0.0, 1.0])
    _, with_wrong = losses.total_loss(
        _outputs_from_logits(mixed_class, mixed_rel, mask), mask, labels, weight, config, 10
    )
    _, all_ideal = losses.total_loss(
        _outputs_from_logits(*ideal, mask), mask, labels, weight, config, 10
    )
    for key in ("mil", "fg", "rel", "class_consistency", "reliability_consistency"):
        assert float(with_wrong[key]) == pytest.approx(float(all_ideal[key]), rel=1e-5, abs=1e-6), (
            key
        )


def test_pseudo_labels_only_use_labelled_classes_or_background():
    mask, labels = _batch()
    rng = np.random.default_rng(1)
    posterior = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, T, C + 1)) * 3), axis=-1)
    pseudo, confident = losses.consistency_pseudo_labels(
        posterior, jnp.asarray(mask), jnp.asarray(labels), 1, 0.0
    )
    pseudo = np.asarray(pseudo)
    assert set(np.unique(pseudo[0])) <= {1, C}
    assert set(np.unique(pseudo[1])) <= {0, 3, C}
    assert set(np.unique(pseudo[2])) == {C}
    assert not np.asarray(confident)[2, 10:].any()


def test_foreground_mass_rule_keeps_split_class_mass_as_foreground():
    """μ = 0.7 with the class softmax split evenly over the C classes: p(c) = 0.175 for each
    class, p(bg) = 0.3. class_argmax calls the snippet background although it is 70 %
    foreground; foreground_mass calls it foreground, of the labelled class."""
    labels = np.zeros((1, C), np.float32)
    labels[0, 2] = 1
    mask = np.ones((1, T), bool)
    posterior = np.concatenate(
        [np.full((1, T, C), 0.7 / C), np.full((1, T, 1), 0.3)], axis=-1
    ).astype(np.float32)
    argmax_pseudo, _ = losses.consistency_pseudo_labels(
        jnp.asarray(posterior), jnp.asarray(mask), jnp.asarray(labels), 1, 0.0
    )
    mass_pseudo, confident = losses.foreground_mass_pseudo_labels(
        jnp.asarray(posterior), jnp.asarray(mask), jnp.asarray(labels), 1, 0.6
    )
    assert (np.asarray(argmax_pseudo) == C).all()
    assert (np.asarray(mass_pseudo) == 2).all() and np.asarray(confident).all()
    # below the confidence τ nothing is used
    _, unsure = losses.foreground_mass_pseudo_labels(
        jnp.asarray(posterior), jnp.asarray(mask), jnp.asarray(labels), 1, 0.75
    )
    assert not np.asarray(unsure).any()
    # background-only videos stay background under both rules
    none = np.zeros_like(labels)
    bg_pseudo, _ = losses.foreground_mass_pseudo_labels(
        jnp.asarray(posterior), jnp.asarray(mask), jnp.asarray(none), 1, 0.0
    )
    assert (np.asarray(bg_pseudo) == C).all()


def test_config_selects_the_pseudo_label_rule_and_rel_background_weight():
    mask, labels, ideal, _ = _ideal_and_wrong()
    outputs = _outputs_from_logits(*ideal, mask)
    weight = jnp.ones((B,))
    # On these ideal outputs both rules give the same pseudo-labels, so they cannot show
    # that the key is used; `test_total_loss_config_selects_the_pseudo_label_rule` below
    # does, with exact values that differ between the rules.
    with pytest.raises(ValueError, match="pseudo_label_rule"):
        losses.total_loss(outputs, mask, labels, weight, _loss_config(pseudo_label_rule="vote"), 10)
    # Without the background term, a labelled video whose μ is high everywhere is not penalised.
    high = np.full((B, T), 6.0, np.float32)
    with_bg = losses.reliability_loss(
        jnp.asarray(high), jnp.asarray(mask), jnp.asarray(labels), weight, 8.0, 1.0
    )
    half_bg = losses.reliability_loss(
        jnp.asarray(high),
        jnp.asarray(mask),
        jnp.asarray(labels),
        weight,
        8.0,
        background_weight=0.5,
    )
    without_bg = losses.reliability_loss(
        jnp.asarray(high),
        jnp.asarray(mask),
        jnp.asarray(labels),
        weight,
        8.0,
        background_weight=0.0,
    )
    assert float(without_bg) < float(half_bg) < float(with_bg)
    # The config key reaches the loss.
    _, terms_off = losses.total_loss(
        _outputs_from_logits(np.zeros((B, T, C), np.float32), high, mask),
        mask,
        labels,
        weight,
        _loss_config(rel_background_weight=0.0),
        10,
    )
    _, terms_on = losses.total_loss(
        _outputs_from_logits(np.zeros((B, T, C), np.float32), high, mask),
        mask,
        labels,
        weight,
        _loss_config(rel_background_weight=1.0),
        10,
    )
    assert float(terms_off["rel"]) < float(terms_on["rel"])


# =======================================================================================
# Every loss term of avloc_jax.losses against values worked out by hand.
#
# Tiny inputs (C = 2 classes, T = 4 snippets, the last one often padding), with logits
# chosen so that the probabilities are simple fractions:
#
#     softmax([log 3, 0]) = [3/4, 1/4]     softmax([0, 0]) = [1/2, 1/2]
#     sigmoid(log 3) = 3/4   sigmoid(-log 3) = 1/4   sigmoid(0) = 1/2
#     sigmoid(log 4) = 4/5   sigmoid(-log 4) = 1/5
#
# and the logarithms that come up:
#
#     -log(3/4) = 0.2876821   -log(1/2) = 0.6931472   -log(1/4) = 1.3862944
#     -log(1/8) = 2.0794415   -log(9/16) = 0.5753641
#
# The expected values are written as closed forms (`-np.log(0.75)`) next to their
# derivation, and compared at rtol 1e-6 (float32). Padded snippets carry extreme values, so
# that any loss that let them count would be far off. Where the loss adds its documented
# ε = 1e-6 (inside a log or a denominator) and that moves the value by more than 1e-7
# relative, the closed form includes it (`EPS`).
# =======================================================================================

EPS = 1e-6  # the ε of the loss definitions (docs/method.md); a copy, not losses._EPS
LOG3, LOG4 = float(np.log(3.0)), float(np.log(4.0))
RTOL = 1e-6
BG = 2  # background index for C = 2


def f32(x):
    return jnp.asarray(np.asarray(x, np.float32))


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=RTOL, atol=0)


# ---------------------------------------------------------------------------------------
# Pooling helpers


def test_topk_count_is_max_one_floor_valid_over_r():
    # |V| = 0, 1, 3, 4, 8, 17 valid snippets (of T = 17).
    # r = 2: ⌊|V|/2⌋ = 0, 0, 1, 2, 4, 8 -> max(1, ·) = 1, 1, 1, 2, 4, 8
    # r = 8: ⌊|V|/8⌋ = 0, 0, 0, 0, 1, 2 -> 1, 1, 1, 1, 1, 2
    valid = [0, 1, 3, 4, 8, 17]
    mask = np.arange(17)[None, :] < np.asarray(valid)[:, None]
    k2 = scores.topk_count(jnp.asarray(mask), 2.0)
    k8 = scores.topk_count(jnp.asarray(mask), 8.0)
    np.testing.assert_array_equal(np.asarray(k2), [1, 1, 1, 2, 4, 8])
    np.testing.assert_array_equal(np.asarray(k8), [1, 1, 1, 1, 1, 2])
    assert k2.dtype == jnp.int32


def test_topk_mean_largest_and_smallest_over_valid_snippets():
    # Video 0: [3, -1, 2 | pad 100], k = 1 -> largest 3, smallest -1.
    # Video 1: [4, 1, -2, 6], k = 2 -> largest (6 + 4)/2 = 5, smallest (-2 + 1)/2 = -0.5.
    # Channel 2 holds the negated values (video 0's pad becomes -100): largest of
    # [-3, 1, -2] is 1, smallest -3; of [-4, -1, 2, -6]: (2 - 1)/2 = 0.5 and (-6 - 4)/2 = -5.
    values = np.array([[3.0, -1.0, 2.0, 100.0], [4.0, 1.0, -2.0, 6.0]], np.float32)
    mask = jnp.asarray([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    k = jnp.asarray([1, 2], jnp.int32)
    close(scores.topk_mean(f32(values), mask, k), [3.0, 5.0])
    close(scores.topk_mean(f32(values), mask, k, largest=False), [-1.0, -0.5])
    both = np.stack([values, -values], axis=-1)  # [B, T, 2]
    close(scores.topk_mean(f32(both), mask, k), [[3.0, 1.0], [5.0, 0.5]])
    close(scores.topk_mean(f32(both), mask, k, largest=False), [[-1.0, -3.0], [-0.5, -5.0]])


def test_normalized_labels():
    # ȳ = y/|y|: [1, 1, 0] -> [1/2, 1/2, 0]; [0, 0, 0] stays 0; [0, 1, 0] stays.
    labels = f32([[1, 1, 0], [0, 0, 0], [0, 1, 0]])
    close(losses.normalized_labels(labels), [[0.5, 0.5, 0], [0, 0, 0], [0, 1, 0]])


def test_smooth_over_time_window_0_1_2_valid_neighbours_only():
    # Values [1, 2, 4 | pad 100] (channel 2: 10x), mask [1, 1, 1, 0].
    # w = 0: unchanged. w = 1: t0 (1+2)/2 = 1.5, t1 (1+2+4)/3 = 7/3, t2 (2+4)/2 = 3 (the
    # pad is neither summed nor counted). w = 2: every valid t sees all three: 7/3.
    values = np.array([1.0, 2.0, 4.0, 100.0], np.float32)
    x = f32(np.stack([values, 10 * values], axis=-1)[None])  # [1, 4, 2]
    mask = jnp.asarray([[1, 1, 1, 0]], bool)
    np.testing.assert_array_equal(np.asarray(losses.smooth_over_time(x, mask, 0)), np.asarray(x))
    w1 = np.asarray(losses.smooth_over_time(x, mask, 1))[0, :3]
    close(w1, np.outer([1.5, 7 / 3, 3.0], [1, 10]))
    w2 = np.asarray(losses.smooth_over_time(x, mask, 2))[0, :3]
    close(w2, np.full((3, 2), 7 / 3) * [1, 10])
    # A video with a single valid snippet: its mean over itself is itself, for any w.
    single = jnp.asarray([[1, 0, 0, 0]], bool)
    for window in (1, 2):
        close(np.asarray(losses.smooth_over_time(x, single, window))[0, 0], [1.0, 10.0])


# ---------------------------------------------------------------------------------------
# L_mil and the video scores

# C = 2, T = 4, r = 2.
#   A: y = [1, 0], valid 0..2 (k = ⌊3/2⌋ = 1). z: [log 3, 0], [0, 0], [-1, -2], pad [5, 5].
#      ẑ = per-class max over valid = [log 3, 0] (the pad's 5 would win if it counted).
#   B: y = [1, 1], all valid (k = 2). z class 0: log 3 + 1, log 3 - 1, -5, -5;
#      class 1: 1, -1, -3, -4. Top-2 means: ẑ = [log 3, 0].
#   C: y = 0 (background only), z = [0, 0] everywhere: ẑ = [0, 0].
#   D: y = [0, 1], example weight 0, z = [0, log 3] everywhere: ẑ = [0, log 3].
MIL_MASK = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], bool)
MIL_LABELS = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], np.float32)
MIL_WEIGHT = np.array([1, 1, 1, 0], np.float32)


def _mil_logits():
    z = np.zeros((4, 4, 2), np.float32)
    z[0] = [[LOG3, 0], [0, 0], [-1, -2], [5, 5]]
    z[1, :, 0] = [LOG3 + 1, LOG3 - 1, -5, -5]
    z[1, :, 1] = [1, -1, -3, -4]
    z[3, :, 1] = LOG3
    return z


def test_video_logits_and_scores_top_k_mean_pooling():
    z, mask = f32(_mil_logits()), jnp.asarray(MIL_MASK)
    close(scores.video_logits(z, mask, 2.0), [[LOG3, 0], [LOG3, 0], [0, 0], [0, LOG3]])
    # softmax([log 3, 0]) = [3/4, 1/4]; softmax([0, 0]) = [1/2, 1/2].
    expected = [[0.75, 0.25], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75]]
    close(scores.video_scores(z, mask, 2.0), expected)


def test_mil_loss_hand_computed():
    # A: -log softmax(ẑ)_0 = -log(3/4) = 0.2876821.
    # B: ȳ = [1/2, 1/2]: -(log(3/4) + log(1/4))/2 = (0.2876821 + 1.3862944)/2 = 0.8369882.
    # C has no label and D has weight 0: neither counts. L_mil = (A + B)/2 = 0.5623351.
    expected = (-np.log(0.75) - 0.5 * (np.log(0.75) + np.log(0.25))) / 2
    got = losses.mil_loss(
        f32(_mil_logits()), jnp.asarray(MIL_MASK), f32(MIL_LABELS), f32(MIL_WEIGHT), 2.0
    )
    close(got, expected)
    # One video alone: the mean over one video is that video's loss (not halved).
    alone = losses.mil_loss(
        f32(_mil_logits()[:1]), jnp.asarray(MIL_MASK[:1]), f32(MIL_LABELS[:1]), f32([1.0]), 2.0
    )
    close(alone, -np.log(0.75))


# ---------------------------------------------------------------------------------------
# L_fg

# One video layout, valid 0..2, pad at t3:
#   z: [log 3, 0] -> p = [3/4, 1/4];  [0, log 3] -> [1/4, 3/4];  [0, 0] -> [1/2, 1/2];
#      pad [9, 0].
#   μ logits: log 3, -log 3, 0, pad 5 -> μ = 3/4, 1/4, 1/2 (pad 0.993 if it counted).
#   Σμ = 3/2;  Σ μ p_0 = 9/16 + 1/16 + 1/4 = 7/8;  Σ μ p_1 = 3/16 + 3/16 + 1/4 = 5/8.
#   q = [7/8, 5/8] / (3/2 + ε) ≈ [7/12, 5/12].
FG_Z = np.array([[LOG3, 0], [0, LOG3], [0, 0], [9, 0]], np.float32)
FG_MU = np.array([LOG3, -LOG3, 0, 5], np.float32)


def _fg_q():
    return np.array([7 / 8, 5 / 8]) / (1.5 + EPS)


def test_foreground_loss_hand_computed():
    # Videos: A y = [1, 0]; B y = [1, 1]; C background-only; D y = [0, 1] with weight 0;
    # all share the layout above.
    #   A: -log(q_0 + ε) = -log(7/12) = 0.5389965.
    #   B: -(log(q_0 + ε) + log(q_1 + ε))/2 = (0.5389965 + 0.8754687)/2 = 0.7072326.
    #   L_fg = (A + B)/2 = 0.6231146 (ε included in the closed form: it moves it by 3e-6).
    q = _fg_q()
    a = -np.log(q[0] + EPS)
    b = -(np.log(q[0] + EPS) + np.log(q[1] + EPS)) / 2
    z = f32(np.broadcast_to(FG_Z, (4, 4, 2)))
    mu = f32(np.broadcast_to(FG_MU, (4, 4)))
    mask = jnp.asarray(np.broadcast_to([1, 1, 1, 0], (4, 4)).astype(bool))
    labels = f32([[1, 0], [1, 1], [0, 0], [0, 1]])
    got = losses.foreground_loss(z, mu, mask, labels, f32([1, 1, 1, 0]))
    close(got, (a + b) / 2)
    assert abs(float(got) - 0.6231146) < 1e-5


# ---------------------------------------------------------------------------------------
# L_rel

# r = 2. Videos, in batch order:
#   A: y = [1, 0], valid 0..2 (k = 1), μ = 3/4, 1/4, 1/2, pad sigmoid(5) = 0.993.
#      top-1 = 3/4, bottom-1 = 1/4 -> -log(3/4) - w_bg log(1 - 1/4) = (1 + w_bg) 0.2876821.
#   B: background-only, all valid (k = 2), μ = 4/5, 1/2, 1/2, 1/5.
#      top-2 mean = (4/5 + 1/2)/2 = 13/20 -> -log(1 - 13/20) = -log(7/20) = 1.0498221.
#   C: y = [1, 1], example weight 0 (μ = 1/2 everywhere): does not count.
#   D: y = [0, 1], all valid (k = 2), μ = 4/5, 3/4, 1/2, 1/4.
#      top-2 mean = 31/40, bottom-2 mean = 3/8 -> -log(31/40) - w_bg log(5/8)
#      = 0.2548922 + w_bg 0.4700036.
#   L_rel = (A + B + D)/3.
REL_MASK = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], bool)
REL_LOGITS = np.array(
    [[LOG3, -LOG3, 0, 5], [LOG4, 0, 0, -LOG4], [0, 0, 0, 0], [LOG4, LOG3, 0, -LOG3]], np.float32
)
REL_LABELS = np.array([[1, 0], [0, 0], [1, 1], [0, 1]], np.float32)
REL_WEIGHT = np.array([1, 1, 0, 1], np.float32)


@pytest.mark.parametrize("w_bg", [1.0, 0.5, 0.0])
def test_reliability_loss_hand_computed(w_bg):
    # w_bg = 1: (0.5753641 + 1.0498221 + 0.7248958)/3 = 0.7833607
    # w_bg = 0.5: (0.4315231 + 1.0498221 + 0.4898940)/3 = 0.6570797
    # w_bg = 0: (0.2876821 + 1.0498221 + 0.2548922)/3 = 0.5307988
    a = -np.log(0.75) - w_bg * np.log(0.75)
    b = -np.log(7 / 20)
    d = -np.log(31 / 40) - w_bg * np.log(5 / 8)
    got = losses.reliability_loss(
        f32(REL_LOGITS),
        jnp.asarray(REL_MASK),
        f32(REL_LABELS),
        f32(REL_WEIGHT),
        2.0,
        background_weight=w_bg,
    )
    close(got, (a + b + d) / 3)


def test_reliability_loss_clips_saturated_mu_to_eps():
    # μ = sigmoid(40) rounds to 1 in float32 and sigmoid(-40) = 4e-18; both top-k means are
    # clipped into [ε, 1 - ε] (as float32: 1e-6 and 1 - 1.0133e-6), so the loss stays finite:
    #   background-only video, μ ≡ 1:  -log(1 - (1 - ε)) ≈ 13.80
    #   labelled video, μ ≡ 0 (w_bg = 1): -log ε - log(1 - ε) ≈ 13.82
    hi, lo = np.float32(1 - EPS), np.float32(EPS)
    mask = jnp.ones((1, 4), bool)
    bg_only = losses.reliability_loss(
        f32(np.full((1, 4), 40.0)), mask, f32([[0, 0]]), f32([1]), 2.0, 1.0
    )
    close(bg_only, -np.log1p(-np.float64(hi)))
    labelled = losses.reliability_loss(
        f32(np.full((1, 4), -40.0)), mask, f32([[1, 0]]), f32([1]), 2.0, 1.0
    )
    close(labelled, -np.log(np.float64(lo)) - np.log1p(-np.float64(lo)))
    # Labelled, μ ≡ 1: the bottom-k mean is clipped too: -log(1 - ε) - log(ε) ≈ 13.80.
    saturated = losses.reliability_loss(
        f32(np.full((1, 4), 40.0)), mask, f32([[1, 0]]), f32([1]), 2.0, 1.0
    )
    close(saturated, -np.log(np.float64(hi)) - np.log1p(-np.float64(hi)))
    # Labelled, perfectly separated (μ = 1, 1, 0, 0; k = 2): top-k clipped to 1 - ε and
    # bottom-k to ε, so the loss is -log(1 - ε) - log(1 - ε) ≈ 2.0e-6, not 1e-6 or 0.
    separated = losses.reliability_loss(
        f32([[40.0, 40.0, -40.0, -40.0]]), mask, f32([[1, 0]]), f32([1]), 2.0, 1.0
    )
    close(separated, -np.log(np.float64(hi)) - np.log1p(-np.float64(lo)))


# ---------------------------------------------------------------------------------------
# Pseudo-labels and the consistency losses, one test per rule

# One video, y = [1, 0] (only class 0 labelled), C = 2, background index 2; valid 0..2,
# window w = 0 (no smoothing), posterior p_t = [p(0), p(1), p(bg)]:
#   t0: [1/2, 1/4, 1/4]
#   t1: [1/4, 3/8, 3/8]
#   t2: [1/8, 1/8, 3/4]
#   t3: pad [1, 0, 0] (a confident class-0 snippet, if it counted)
# class_argmax: argmax over {0, bg}:
#   t0: 1/2 vs 1/4 -> 0 (confidence 1/2); t1: 1/4 vs 3/8 -> bg (3/8); t2: bg (3/4).
# foreground_mass: foreground iff 1 - p(bg) > p(bg), then the best labelled class:
#   t0: 3/4 > 1/4 -> 0 (confidence 3/4); t1: 5/8 > 3/8 -> 0 (5/8); t2: bg (3/4).
# The rules differ at t1: class_argmax calls it background, foreground_mass class 0.
# μ logits log 3, log 3, -log 3 (pad 0): μ = 3/4, 3/4, 1/4.
RULE_POSTERIOR = np.array(
    [[[0.5, 0.25, 0.25], [0.25, 0.375, 0.375], [0.125, 0.125, 0.75], [1, 0, 0]]], np.float32
)
RULE_MU = np.array([[LOG3, LOG3, -LOG3, 0]], np.float32)
RULE_MASK = np.array([[1, 1, 1, 0]], bool)
RULE_LABELS = np.array([[1, 0]], np.float32)
RULE_FN = {
    "class_argmax": losses.consistency_pseudo_labels,
    "foreground_mass": losses.foreground_mass_pseudo_labels,
}


def _ce(p):
    return -np.log(p + EPS)  # CE(p_t, ŷ_t) as the loss takes it: -log(p_t(ŷ_t) + ε)


# rule -> τ -> (pseudo-labels at t0..t2, confident at t0..t3, L_cc, L_fc)
# L_cc = mean over confident t of -log p_t(ŷ_t); L_fc = mean of BCE(μ_t, 1[ŷ_t ≠ bg]):
#   BCE(3/4, 1) = -log(3/4) = 0.2876821, BCE(3/4, 0) = -log(1/4) = 1.3862944,
#   BCE(1/4, 0) = -log(3/4).
RULE_CASES = {
    "class_argmax": {
        # τ = 0.3: all three confident, ŷ = [0, bg, bg].
        #   L_cc = -(log 1/2 + log 3/8 + log 3/4)/3 = (0.6931472 + 0.9808293 + 0.2876821)/3
        #        = 0.6538862;  L_fc = (0.2876821 + 1.3862944 + 0.2876821)/3 = 0.6538862.
        0.3: (
            [0, BG, BG],
            [1, 1, 1, 0],
            (_ce(0.5) + _ce(0.375) + _ce(0.75)) / 3,
            (-np.log(0.75) - np.log(0.25) - np.log(0.75)) / 3,
        ),
        # τ = 0.5: t0 exactly at τ (kept: confident when ≥ τ), t1 (3/8) dropped.
        #   L_cc = -(log 1/2 + log 3/4)/2 = 0.4904146;  L_fc = -log(3/4) = 0.2876821.
        0.5: ([0, BG, BG], [1, 0, 1, 0], (_ce(0.5) + _ce(0.75)) / 2, -np.log(0.75)),
    },
    "foreground_mass": {
        # τ = 0.3: all confident, ŷ = [0, 0, bg].
        #   L_cc = -(log 1/2 + log 1/4 + log 3/4)/3 = (0.6931472 + 1.3862944 + 0.2876821)/3
        #        = 0.7890412;  L_fc = 3 × 0.2876821 / 3 = 0.2876821.
        0.3: ([0, 0, BG], [1, 1, 1, 0], (_ce(0.5) + _ce(0.25) + _ce(0.75)) / 3, -np.log(0.75)),
        # τ = 0.75: t0 (3/4) and t2 (3/4) exactly at τ are kept; t1 (5/8) dropped.
        #   L_cc = -(log 1/2 + log 3/4)/2 = 0.4904146;  L_fc = 0.2876821.
        0.75: ([0, 0, BG], [1, 0, 1, 0], (_ce(0.5) + _ce(0.75)) / 2, -np.log(0.75)),
    },
}


@pytest.mark.parametrize(
    "rule,tau", [(r, t) for r, cases in RULE_CASES.items() for t in cases], ids=str
)
def test_pseudo_labels_and_consistency_losses_per_rule(rule, tau):
    pseudo_expected, confident_expected, l_cc, l_fc = RULE_CASES[rule][tau]
    args = (f32(RULE_POSTERIOR), jnp.asarray(RULE_MASK), f32(RULE_LABELS), 0, tau)
    pseudo, confident = RULE_FN[rule](*args)
    np.testing.assert_array_equal(np.asarray(pseudo)[0, :3], pseudo_expected)
    np.testing.assert_array_equal(np.asarray(confident)[0], np.asarray(confident_expected, bool))
    cc, fc = losses.consistency_losses(
        f32(RULE_POSTERIOR),
        f32(RULE_MU),
        jnp.asarray(RULE_MASK),
        f32(RULE_LABELS),
        f32([1.0]),
        0,
        tau,
        rule=rule,
    )
    close(cc, l_cc)
    close(fc, l_fc)


def test_the_two_rules_give_different_values_on_the_same_input():
    # τ = 0.3: class_argmax (0.6538862, 0.6538862), foreground_mass (0.7890412, 0.2876821).
    values = {}
    for rule in losses.PSEUDO_LABEL_RULES:
        values[rule] = tuple(
            float(v)
            for v in losses.consistency_losses(
                f32(RULE_POSTERIOR),
                f32(RULE_MU),
                jnp.asarray(RULE_MASK),
                f32(RULE_LABELS),
                f32([1.0]),
                0,
                0.3,
                rule=rule,
            )
        )
    close(values["class_argmax"], RULE_CASES["class_argmax"][0.3][2:])
    close(values["foreground_mass"], RULE_CASES["foreground_mass"][0.3][2:])
    assert abs(values["class_argmax"][0] - values["foreground_mass"][0]) > 0.1
    assert abs(values["class_argmax"][1] - values["foreground_mass"][1]) > 0.3


def test_unknown_rule_is_rejected_with_the_choices():
    with pytest.raises(ValueError) as info:
        losses.consistency_losses(
            f32(RULE_POSTERIOR), f32(RULE_MU), jnp.asarray(RULE_MASK), f32(RULE_LABELS),
            f32([1]), 0, 0.3, rule="vote",
        )  # fmt: skip
    assert str(info.value) == (
        "loss.pseudo_label_rule must be one of ('foreground_mass', 'class_argmax'), got 'vote'"
    )


# Labelled classes only, and the background tie. One video, y = [0, 1] (class 1 only):
#   u0: [3/5, 3/20, 1/4]: the unlabelled class 0 is the largest entry.
#       class_argmax over {1, bg}: 3/20 vs 1/4 -> bg (confidence 1/4);
#       foreground_mass: 3/4 > 1/4 -> foreground, best *labelled* class = 1 (confidence 3/4).
#   u1: [1/4, 1/4, 1/2]: class_argmax: bg (1/2 > 1/4); foreground_mass: p(bg) = 1/2 =
#       1 - p(bg), a tie, which is background (confidence 1/2).
# w = 0, τ = 0: every valid snippet is confident.
#   class_argmax: ŷ = [bg, bg]: L_cc = -(log 1/4 + log 1/2)/2 = 1.0397208
#   foreground_mass: ŷ = [1, bg]: L_cc = -(log 3/20 + log 1/2)/2 = 1.2951251
LABELLED_POSTERIOR = np.array([[[0.6, 0.15, 0.25], [0.25, 0.25, 0.5]]], np.float32)


@pytest.mark.parametrize(
    "rule,pseudo_expected,l_cc",
    [
        ("class_argmax", [BG, BG], (_ce(0.25) + _ce(0.5)) / 2),
        ("foreground_mass", [1, BG], (_ce(0.15) + _ce(0.5)) / 2),
    ],
    ids=["class_argmax", "foreground_mass"],
)
def test_pseudo_labels_use_only_labelled_classes_and_tie_to_background(rule, pseudo_expected, l_cc):
    args = (f32(LABELLED_POSTERIOR), jnp.ones((1, 2), bool), f32([[0, 1]]), 0, 0.0)
    pseudo, confident = RULE_FN[rule](*args)
    np.testing.assert_array_equal(np.asarray(pseudo)[0], pseudo_expected)
    assert np.asarray(confident).all()
    cc, _ = losses.consistency_losses(
        f32(LABELLED_POSTERIOR), f32([[0, 0]]), *args[1:3], f32([1]), 0, 0.0, rule=rule
    )
    close(cc, l_cc)


# Two labelled classes, y = [1, 1]: the pseudo-label is the better of the two, not the
# first. One snippet [1/5, 1/2, 3/10], w = 0, τ = 0:
#   class_argmax: argmax over {0, 1, bg} = 1 (1/2);
#   foreground_mass: 1 - 3/10 = 7/10 > 3/10, foreground; best labelled class = 1.
#   L_cc = -log(1/2) = 0.6931472 under both rules.
@pytest.mark.parametrize("rule", ["class_argmax", "foreground_mass"])
def test_pseudo_label_is_the_best_of_several_labelled_classes(rule):
    posterior, mask, labels = f32([[[0.2, 0.5, 0.3]]]), jnp.ones((1, 1), bool), f32([[1, 1]])
    pseudo, _ = RULE_FN[rule](posterior, mask, labels, 0, 0.0)
    assert np.asarray(pseudo).tolist() == [[1]]
    cc, _ = losses.consistency_losses(
        posterior, f32([[0.0]]), mask, labels, f32([1]), 0, 0.0, rule=rule
    )
    close(cc, _ce(0.5))


# Background-only video (y = 0), w = 0, τ = 1/2, μ logits log 3, -log 3 (μ = 3/4, 1/4):
#   v0: [1/2, 1/4, 1/4];  v1: [1/8, 1/8, 3/4]. Both rules label both snippets background.
#   class_argmax: confident iff p̄(bg) ≥ τ: v0 (1/4) no, v1 (3/4) yes.
#     L_cc = -log(3/4) = 0.2876821; L_fc = BCE(1/4, 0) = -log(3/4) = 0.2876821.
#   foreground_mass: confident iff max(p̄(bg), 1 - p̄(bg)) ≥ τ: both (3/4 each).
#     L_cc = -(log 1/4 + log 3/4)/2 = 0.8369882;
#     L_fc = (BCE(3/4, 0) + BCE(1/4, 0))/2 = (1.3862944 + 0.2876821)/2 = 0.8369882.
@pytest.mark.parametrize(
    "rule,confident_expected,l_cc,l_fc",
    [
        ("class_argmax", [0, 1], _ce(0.75), -np.log(0.75)),
        (
            "foreground_mass",
            [1, 1],
            (_ce(0.25) + _ce(0.75)) / 2,
            (-np.log(0.25) - np.log(0.75)) / 2,
        ),
    ],
    ids=["class_argmax", "foreground_mass"],
)
def test_background_only_video_per_rule(rule, confident_expected, l_cc, l_fc):
    posterior = f32([[[0.5, 0.25, 0.25], [0.125, 0.125, 0.75]]])
    mask, labels = jnp.ones((1, 2), bool), f32([[0, 0]])
    pseudo, confident = RULE_FN[rule](posterior, mask, labels, 0, 0.5)
    np.testing.assert_array_equal(np.asarray(pseudo), [[BG, BG]])
    np.testing.assert_array_equal(np.asarray(confident)[0], np.asarray(confident_expected, bool))
    cc, fc = losses.consistency_losses(
        posterior, f32([[LOG3, -LOG3]]), mask, labels, f32([1]), 0, 0.5, rule=rule
    )
    close(cc, l_cc)
    close(fc, l_fc)


# The window w. One video, y = [1, 0], valid 0..2, pad at t3, τ = 1/2, class_argmax:
#   t0: [3/4, 0, 1/4];  t1: [1/8, 1/8, 3/4];  t2: [3/4, 0, 1/4];  pad [1, 0, 0].
#   w = 0: ŷ = [0, bg, 0] (confidence 3/4 each):
#     L_cc = -(log 3/4 + log 3/4 + log 3/4)/3 = 0.2876821.
#   w = 1: p̄_0 = p̄_2 = mean of two = [7/16, 1/16, 1/2] -> bg (confidence 1/2, = τ: kept;
#     a pad counted in the mean would make p̄_2 = [5/8, 1/24, 1/3], class 0);
#     p̄_1 = mean of three = [13/24, 1/24, 5/12] -> 0 (confidence 13/24).
#     ŷ = [bg, 0, bg]: L_cc = -(log 1/4 + log 1/8 + log 1/4)/3 = 1.6173434.
#   w = 2: every p̄_t = [13/24, 1/24, 5/12] -> 0: L_cc = -(log 3/4 + log 1/8 + log 3/4)/3
#     = 0.8849352.
# Under foreground_mass the labels are the same (w = 1: p̄_0(bg) = 1/2 ties to background).
WINDOW_POSTERIOR = np.array(
    [[[0.75, 0, 0.25], [0.125, 0.125, 0.75], [0.75, 0, 0.25], [1, 0, 0]]], np.float32
)


@pytest.mark.parametrize("rule", ["class_argmax", "foreground_mass"])
@pytest.mark.parametrize(
    "window,pseudo_expected,l_cc",
    [
        (0, [0, BG, 0], 3 * _ce(0.75) / 3),
        (1, [BG, 0, BG], (2 * _ce(0.25) + _ce(0.125)) / 3),
        (2, [0, 0, 0], (2 * _ce(0.75) + _ce(0.125)) / 3),
    ],
    ids=["w0", "w1", "w2"],
)
def test_consistency_window(rule, window, pseudo_expected, l_cc):
    mask = jnp.asarray([[1, 1, 1, 0]], bool)
    pseudo, confident = RULE_FN[rule](f32(WINDOW_POSTERIOR), mask, f32([[1, 0]]), window, 0.5)
    np.testing.assert_array_equal(np.asarray(pseudo)[0, :3], pseudo_expected)
    np.testing.assert_array_equal(np.asarray(confident)[0], [True, True, True, False])
    cc, _ = losses.consistency_losses(
        f32(WINDOW_POSTERIOR), jnp.zeros((1, 4)), mask, f32([[1, 0]]), f32([1]), window, 0.5, rule
    )
    close(cc, l_cc)


def test_consistency_losses_skip_zero_weight_examples():
    # The rule video (τ = 0.3, class_argmax: 0.6538862, 0.6538862) plus a second video of
    # example weight 0 whose three confident snippets would change both means.
    posterior = np.concatenate([RULE_POSTERIOR, RULE_POSTERIOR[:, ::-1, ::-1]], axis=0)
    mu = np.concatenate([RULE_MU, -RULE_MU], axis=0)
    mask = np.concatenate([RULE_MASK, RULE_MASK], axis=0)
    labels = np.concatenate([RULE_LABELS, RULE_LABELS], axis=0)
    cc, fc = losses.consistency_losses(
        f32(posterior), f32(mu), jnp.asarray(mask), f32(labels), f32([1, 0]), 0, 0.3, "class_argmax"
    )
    close((cc, fc), RULE_CASES["class_argmax"][0.3][2:])


# ---------------------------------------------------------------------------------------
# The total

# One video, y = [1, 0], valid 0..2, pad at t3, r = 2 (k = 1):
#   z: [log 3, 0], [0, log 3], [0, 0], pad [9, 0];  μ logits log 3, -log 3, 0, pad 5.
#   L_mil: ẑ = per-class max = [log 3, log 3] -> softmax [1/2, 1/2] -> log 2 = 0.6931472.
#   L_fg: as in the L_fg test, video A: -log(7/12) = 0.5389965.
#   L_rel (w_bg = 0.3): -log(3/4) - 0.3 log(3/4) = 1.3 × 0.2876821 = 0.3739867.
#   posterior p_t = [μ softmax(z), 1 - μ]: [9/16, 3/16, 1/4], [1/16, 3/16, 3/4], [1/4, 1/4, 1/2].
#   Consistency, w = 0, τ = 0.55:
#     class_argmax: t0 -> 0 (9/16 ≥ τ), t1 -> bg (3/4), t2: 1/2 < τ, dropped.
#       L_cc = -(log 9/16 + log 3/4)/2 = 0.4315231; L_fc = (BCE(3/4,1) + BCE(1/4,0))/2
#       = 0.2876821.
#     foreground_mass: the same labels; t2: max(1/2, 1/2) < τ, dropped; the same values.
#   So the rules do not matter here; τ = 0.6 separates them: class_argmax keeps t1 only
#   (9/16 < 0.6): L_cc = L_fc = 0.2876821; foreground_mass keeps t0 (3/4) and t1.
TOTAL_Z = FG_Z[None]
TOTAL_MU = FG_MU[None]
TOTAL_POSTERIOR = np.array(
    [[[9 / 16, 3 / 16, 1 / 4], [1 / 16, 3 / 16, 3 / 4], [1 / 4, 1 / 4, 1 / 2], [0.9, 0.1, 0]]],
    np.float32,
)


def _config(**overrides):
    """The hand-computed total's loss config: `_loss_config` with its own values."""
    return _loss_config(
        **{
            "topk_ratio": 2.0,
            "fg_weight": 0.5,
            "rel_weight": 2.0,
            "class_consistency_weight": 0.25,
            "reliability_consistency_weight": 0.75,
            "consistency_window": 0,
            "consistency_threshold": 0.55,
            "consistency_warmup_steps": 5,
            "rel_background_weight": 0.3,
            **overrides,
        }
    )


def _total(config, step):
    outputs = {
        "class_logits": f32(TOTAL_Z),
        "reliability_logits": f32(TOTAL_MU),
        "posterior": f32(TOTAL_POSTERIOR),
    }
    # A float mask, as a data pipeline may give it: total_loss makes it boolean.
    mask = f32([[1, 1, 1, 0]])
    return losses.total_loss(outputs, mask, f32([[1, 0]]), f32([1]), config, step)


TERMS = {
    "mil": np.log(2.0),
    "fg": -np.log(_fg_q()[0] + EPS),
    "rel": -1.3 * np.log(0.75),
    "class_consistency": (_ce(9 / 16) + _ce(0.75)) / 2,
    "reliability_consistency": -np.log(0.75),
}


def test_total_loss_is_the_weighted_sum_after_warmup():
    # step 5 = warm-up steps: consistency on.
    # L = 1 × 0.6931472 + 0.5 × 0.5389965 + 2 × 0.3739867 + 0.25 × 0.4315231
    #     + 0.75 × 0.2876821 = 2.0366541
    loss, terms = _total(_config(), 5)
    for name, value in TERMS.items():
        close(terms[name], value)
    expected = (
        TERMS["mil"]
        + 0.5 * TERMS["fg"]
        + 2.0 * TERMS["rel"]
        + 0.25 * TERMS["class_consistency"]
        + 0.75 * TERMS["reliability_consistency"]
    )
    close(loss, expected)
    close(terms["total"], expected)
    assert float(terms["consistency_on"]) == 1.0


def test_total_loss_before_warmup_has_no_consistency():
    # step 4 < 5: L = 0.6931472 + 0.5 × 0.5389965 + 2 × 0.3739867 = 1.7101189; the terms are
    # still computed and reported.
    loss, terms = _total(_config(), 4)
    close(loss, TERMS["mil"] + 0.5 * TERMS["fg"] + 2.0 * TERMS["rel"])
    close(terms["class_consistency"], TERMS["class_consistency"])
    assert float(terms["consistency_on"]) == 0.0


@pytest.mark.parametrize(
    "weights,present",
    [
        (dict(mil_weight=0.0), {"fg", "rel", "class_consistency", "reliability_consistency"}),
        (dict(fg_weight=0.0), {"mil", "rel", "class_consistency", "reliability_consistency"}),
        (dict(rel_weight=0.0), {"mil", "fg", "class_consistency", "reliability_consistency"}),
        (dict(class_consistency_weight=0.0), set(TERMS)),
        (dict(reliability_consistency_weight=0.0), set(TERMS)),
        (
            dict(class_consistency_weight=0.0, reliability_consistency_weight=0.0),
            {"mil", "fg", "rel"},
        ),
    ],
)
def test_total_loss_zero_weight_drops_a_term(weights, present):
    config = _config(**weights)
    loss, terms = _total(config, 5)
    assert set(terms) - {"total", "consistency_on"} == present
    expected = sum(
        config[key] * TERMS[name]
        for name, key in [
            ("mil", "mil_weight"),
            ("fg", "fg_weight"),
            ("rel", "rel_weight"),
            ("class_consistency", "class_consistency_weight"),
            ("reliability_consistency", "reliability_consistency_weight"),
        ]
    )
    close(loss, expected)


@pytest.mark.parametrize(
    "rule,l_cc,l_fc",
    [
        # τ = 0.6: class_argmax keeps t1 only: L_cc = -log(3/4), L_fc = BCE(1/4, 0) = -log(3/4).
        ("class_argmax", _ce(0.75), -np.log(0.75)),
        # foreground_mass keeps t0 (3/4) and t1 (3/4): L_cc = -(log 9/16 + log 3/4)/2
        # = 0.4315231, L_fc = 0.2876821.
        ("foreground_mass", (_ce(9 / 16) + _ce(0.75)) / 2, -np.log(0.75)),
    ],
    ids=["class_argmax", "foreground_mass"],
)
def test_total_loss_config_selects_the_pseudo_label_rule(rule, l_cc, l_fc):
    loss, terms = _total(_config(pseudo_label_rule=rule, consistency_threshold=0.6), 5)
    close(terms["class_consistency"], l_cc)
    close(terms["reliability_consistency"], l_fc)
    base = TERMS["mil"] + 0.5 * TERMS["fg"] + 2.0 * TERMS["rel"]
    close(loss, base + 0.25 * l_cc + 0.75 * l_fc)


def test_total_loss_config_passes_rel_background_weight():
    # w_bg = 1: L_rel = -2 log(3/4) = 0.5753641 instead of 0.3739867.
    _, terms = _total(_config(rel_background_weight=1.0), 5)
    close(terms["rel"], -2 * np.log(0.75))
