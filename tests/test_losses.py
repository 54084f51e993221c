"""The weakly-supervised losses: finiteness, gradients, minima on constructed cases."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from avloc_jax import losses
from avloc_jax import model as models
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
    k = losses.topk_count(jnp.asarray(mask), 8.0)
    np.testing.assert_array_equal(np.asarray(k), [2, 2, 1])
    got = np.asarray(losses.topk_mean(jnp.asarray(values), jnp.asarray(mask), k))
    got_low = np.asarray(losses.topk_mean(jnp.asarray(values), jnp.asarray(mask), k, largest=False))
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
        jnp.asarray(low), jnp.asarray(mask), jnp.asarray(labels), weight, k_config.topk_ratio
    )
    loss_high = losses.reliability_loss(
        jnp.asarray(high), jnp.asarray(mask), jnp.asarray(labels), weight, k_config.topk_ratio
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
    results = {}
    for rule in losses.PSEUDO_LABEL_RULES:
        _, terms = losses.total_loss(
            outputs, mask, labels, weight, _loss_config(pseudo_label_rule=rule), 10
        )
        results[rule] = float(terms["class_consistency"])
    assert all(np.isfinite(v) for v in results.values())
    with pytest.raises(ValueError, match="pseudo_label_rule"):
        losses.total_loss(outputs, mask, labels, weight, _loss_config(pseudo_label_rule="vote"), 10)
    # Without the background term, a labelled video whose μ is high everywhere is not penalised.
    high = np.full((B, T), 6.0, np.float32)
    with_bg = losses.reliability_loss(
        jnp.asarray(high), jnp.asarray(mask), jnp.asarray(labels), weight, 8.0
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
