"""Behaviour of the Flax modules: shapes, masking, equivariance, modality purity."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avloc_jax import model as models

B, T, DV, DA, C, D = 2, 12, 20, 8, 5, 16


def _inputs(seed=0, length=T):
    rng = np.random.default_rng(seed)
    visual = rng.normal(size=(B, length, DV)).astype(np.float32)
    audio = rng.normal(size=(B, length, DA)).astype(np.float32)
    mask = np.ones((B, length), bool)
    mask[1, length - 3 :] = False
    return visual, audio, mask


# The module fields config.model sets have no defaults; the tests of a single module start
# from global attention, no distance bias, two dense-skip stages, an open gate.
STAGE = dict(num_heads=1, window=0, distance_bias=False)
FUSION = dict(
    STAGE,
    num_stages=2,
    skip="dense",
    merge="none",
    attention_gate=True,
    attention_gate_frozen=False,
)


def _stage(**kwargs):
    return models.CrossAttentionStage(**{**STAGE, **kwargs})


def _fusion(**kwargs):
    return models.MultiStageCrossAttention(**{**FUSION, **kwargs})


def _model(**kwargs):
    """The default config's model, D wide, without dropout, changed by `kwargs`."""
    from configs import default

    model_config = default.get_config().model
    model_config.update(dict(embed_dim=D, dropout_rate=0.0, **kwargs))
    return models.build_model(model_config, num_classes=C)


@pytest.mark.parametrize("fusion,head", list(itertools.product(models.FUSIONS, models.HEADS)))
def test_output_shapes_for_every_fusion_and_head(fusion, head):
    visual, audio, mask = _inputs()
    model = _model(fusion=fusion, head=head)
    params = model.init(jax.random.key(0), visual, audio, mask)
    out = model.apply(params, visual, audio, mask)
    assert out["class_logits"].shape == (B, T, C)
    assert out["reliability_logits"].shape == (B, T)
    assert out["reliability"].shape == (B, T)
    assert out["posterior"].shape == (B, T, C + 1)
    for value in out.values():
        assert value.dtype == jnp.float32
        assert np.isfinite(np.asarray(value)).all()
        # padded snippets are zero
        assert np.all(np.asarray(value)[1, T - 3 :] == 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(attention_window=2),
        dict(distance_bias=True, num_heads=2),
        dict(skip="residual", merge="tanh", num_stages=3),
        dict(merge="layernorm", attention_gate=False, attention_window=0),
        dict(skip="none", conv_kernel=0),
        dict(fusion="concat"),
        dict(head="softmax_bg"),
    ],
)
def test_padding_invariance(kwargs):
    """Appending padded snippets (with garbage features) leaves valid outputs unchanged."""
    visual, audio, mask = _inputs()
    model = _model(**kwargs)
    params = model.init(jax.random.key(1), visual, audio, mask)
    out = model.apply(params, visual, audio, mask)
    extra = 7
    rng = np.random.default_rng(5)
    visual_long = np.concatenate(
        [visual, 100 * rng.normal(size=(B, extra, DV)).astype(np.float32)], axis=1
    )
    audio_long = np.concatenate(
        [audio, 100 * rng.normal(size=(B, extra, DA)).astype(np.float32)], axis=1
    )
    mask_long = np.concatenate([mask, np.zeros((B, extra), bool)], axis=1)
    # garbage inside the already-padded tail of video 1 too
    visual_long[1, T - 3 : T] = 1e3
    out_long = model.apply(params, visual_long, audio_long, mask_long)
    for key in out:
        np.testing.assert_allclose(
            np.asarray(out_long[key])[:, :T][mask],
            np.asarray(out[key])[mask],
            rtol=1e-5,
            atol=1e-5,
            err_msg=key,
        )


def test_cross_attention_stage_is_equivariant_to_joint_time_permutation():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(B, T, D)).astype(np.float32)
    visual = rng.normal(size=(B, T, D)).astype(np.float32)
    mask = np.ones((B, T), bool)
    stage = _stage(num_heads=2)
    params = stage.init(jax.random.key(0), audio, visual, mask)
    audio_out, visual_out, _ = stage.apply(params, audio, visual, mask)
    perm = rng.permutation(T)
    audio_p, visual_p, _ = stage.apply(params, audio[:, perm], visual[:, perm], mask[:, perm])
    np.testing.assert_allclose(
        np.asarray(audio_p), np.asarray(audio_out)[:, perm], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(visual_p), np.asarray(visual_out)[:, perm], rtol=1e-5, atol=1e-6
    )
    # The whole multi-stage fusion (no positional input) is equivariant too.
    fusion = _fusion(num_stages=3, window=0, attention_gate=False)
    fparams = fusion.init(jax.random.key(1), audio, visual, mask, method="attend")
    fa, fv = fusion.apply(fparams, audio, visual, mask, method="attend")
    fa_p, fv_p = fusion.apply(
        fparams, audio[:, perm], visual[:, perm], mask[:, perm], method="attend"
    )
    np.testing.assert_allclose(np.asarray(fa_p), np.asarray(fa)[:, perm], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(fv_p), np.asarray(fv)[:, perm], rtol=1e-5, atol=1e-5)


def test_each_modality_values_come_only_from_that_modality():
    """The other modality only sets attention weights, never the values.

    1. Each output row of a stage is a convex combination of its own modality's input rows:
       with visual input constant over time, the visual output equals that constant row
       whatever the audio is (audio cannot inject content into the visual stream).
    2. Zeroing the audio changes the visual output only through the weights: the visual
       output is then the plain mean of the valid visual rows (uniform weights).
    3. The visual output's Jacobian w.r.t. audio vanishes when the weights cannot change
       anything (constant visual rows).
    """
    rng = np.random.default_rng(3)
    audio = rng.normal(size=(B, T, D)).astype(np.float32)
    visual_row = rng.normal(size=(B, 1, D)).astype(np.float32)
    visual_const = np.repeat(visual_row, T, axis=1)
    mask = np.ones((B, T), bool)
    mask[1, -4:] = False
    stage = _stage(num_heads=2)
    params = stage.init(jax.random.key(0), audio, visual_const, mask)

    _, visual_out, _ = stage.apply(params, audio, visual_const, mask)
    np.testing.assert_allclose(np.asarray(visual_out), visual_const, rtol=1e-5, atol=1e-5)
    _, visual_out_other_audio, _ = stage.apply(params, 50 * audio[:, ::-1], visual_const, mask)
    np.testing.assert_allclose(
        np.asarray(visual_out_other_audio), visual_const, rtol=1e-5, atol=1e-5
    )

    visual = rng.normal(size=(B, T, D)).astype(np.float32)
    _, visual_zero_audio, logits = stage.apply(params, np.zeros_like(audio), visual, mask)
    for b in range(B):
        expected = visual[b][mask[b]].mean(axis=0)
        np.testing.assert_allclose(
            np.asarray(visual_zero_audio)[b][mask[b]],
            np.broadcast_to(expected, (mask[b].sum(), D)),
            rtol=1e-5,
            atol=1e-5,
        )
    _, visual_with_audio, _ = stage.apply(params, audio, visual, mask)
    assert not np.allclose(np.asarray(visual_with_audio), np.asarray(visual_zero_audio), atol=1e-3)

    jac = jax.jacobian(lambda a: stage.apply(params, a, visual_const, mask)[1])(audio)
    assert np.abs(np.asarray(jac)).max() < 1e-5
    jac_nonconst = jax.jacobian(lambda a: stage.apply(params, a, visual, mask)[1])(audio)
    assert np.abs(np.asarray(jac_nonconst)).max() > 1e-4


def test_zero_initialised_gate_starts_from_early_concatenation():
    """With the gate at its initial 0 the attended term adds nothing: with dense skip and no
    merge non-linearity each stream is 2^(S-1) times its embedding, whatever the bilinear
    weights are. Opening the gate lets the attention change the output; ungated attention
    changes it from the start."""
    rng = np.random.default_rng(4)
    audio = rng.normal(size=(B, T, D)).astype(np.float32)
    visual = rng.normal(size=(B, T, D)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[1, -2:] = False
    fusion = _fusion(num_stages=2, window=1)

    def init(module):
        return module.init(jax.random.key(0), audio, visual, mask, method="attend")

    def apply(module, params):
        return module.apply(params, audio, visual, mask, method="attend")

    params = init(fusion)
    gates = [k for k in params["params"] if "gate" in k]
    assert sorted(gates) == ["audio_gate_0", "audio_gate_1", "visual_gate_0", "visual_gate_1"]
    fa, fv = apply(fusion, params)
    np.testing.assert_allclose(np.asarray(fa), 2 * audio * mask[..., None], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(fv), 2 * visual * mask[..., None], rtol=1e-6, atol=1e-6)
    opened = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.ones_like(x) if "gate" in jax.tree_util.keystr(path) else x, params
    )
    fa_open, fv_open = apply(fusion, opened)
    assert not np.allclose(np.asarray(fa_open), np.asarray(fa), atol=1e-3)
    assert not np.allclose(np.asarray(fv_open), np.asarray(fv), atol=1e-3)
    ungated = _fusion(num_stages=2, window=1, attention_gate=False)
    uparams = init(ungated)
    assert not any("gate" in k for k in uparams["params"])
    ua, _ = apply(ungated, uparams)
    assert not np.allclose(np.asarray(ua), np.asarray(fa), atol=1e-3)
    # Without a skip connection a closed gate would zero the streams: no gate there.
    no_skip = _fusion(num_stages=2, window=1, skip="none")
    nparams = init(no_skip)
    assert not any("gate" in k for k in nparams["params"])
    assert np.abs(np.asarray(apply(no_skip, nparams)[1])).max() > 0.1
    # The gate receives a gradient at initialisation, so training can open it.
    grads = jax.grad(lambda p: jnp.sum(apply(fusion, p)[1] ** 2))(params)
    assert np.abs(np.asarray(grads["params"]["visual_gate_0"])).max() > 0
    # The frozen control gets no gradient into its gates, so it never uses the attention.
    frozen = _fusion(num_stages=2, window=1, attention_gate_frozen=True)
    frozen_grads = jax.grad(lambda p: jnp.sum(apply(frozen, p)[1] ** 2))(params)
    assert np.abs(np.asarray(frozen_grads["params"]["visual_gate_0"])).max() == 0


def test_open_set_posterior_is_a_distribution():
    visual, audio, mask = _inputs()
    for head in models.HEADS:
        model = _model(head=head)
        params = model.init(jax.random.key(2), visual, audio, mask)
        posterior = np.asarray(model.apply(params, visual, audio, mask)["posterior"])
        assert (posterior >= 0).all()
        np.testing.assert_allclose(posterior.sum(-1)[mask], 1.0, rtol=1e-5)
        out = model.apply(params, visual, audio, mask)
        # background probability is 1 - μ
        np.testing.assert_allclose(
            posterior[..., -1][mask], 1 - np.asarray(out["reliability"])[mask], rtol=1e-5, atol=1e-6
        )


def test_window_restricts_attention():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(1, T, D)).astype(np.float32)
    visual = rng.normal(size=(1, T, D)).astype(np.float32)
    mask = np.ones((1, T), bool)
    stage = _stage(window=2)
    params = stage.init(jax.random.key(0), audio, visual, mask)
    # Changing the visual snippet far from t=0 leaves the visual output at t=0 unchanged.
    _, out, _ = stage.apply(params, audio, visual, mask)
    visual2 = visual.copy()
    visual2[0, 8] += 10
    _, out2, _ = stage.apply(params, audio, visual2, mask)
    np.testing.assert_allclose(
        np.asarray(out2)[0, :5], np.asarray(out)[0, :5], rtol=1e-6, atol=1e-6
    )
    assert not np.allclose(np.asarray(out2)[0, 8], np.asarray(out)[0, 8])


def test_bfloat16_compute_agrees_with_float32():
    """bf16 compute (float32 params) matches float32 to a stated tolerance:
    posterior probabilities within 0.03 absolute; parameters stay float32."""
    visual, audio, mask = _inputs()
    model32 = _model()
    model16 = _model(dtype="bfloat16")
    params = model32.init(jax.random.key(0), visual, audio, mask)
    params16 = model16.init(jax.random.key(0), visual, audio, mask)
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params16))
    out32 = model32.apply(params, visual, audio, mask)
    out16 = model16.apply(params, visual, audio, mask)
    assert out16["posterior"].dtype == jnp.float32
    diff = np.abs(np.asarray(out16["posterior"]) - np.asarray(out32["posterior"])).max()
    assert diff < 0.03, diff


def test_jitted_forward_compiles_once_per_shape():
    visual, audio, mask = _inputs()
    model = _model()
    params = model.init(jax.random.key(0), visual, audio, mask)
    traces = []

    @jax.jit
    def forward(params, visual, audio, mask):
        traces.append(visual.shape)
        return model.apply(params, visual, audio, mask)

    for seed in range(3):
        v, a, m = _inputs(seed)
        forward(params, v, a, m)
    assert len(traces) == 1
    v, a, m = _inputs(0, length=T + 4)
    forward(params, v, a, m)
    forward(params, *_inputs(1, length=T + 4))
    assert len(traces) == 2


def test_build_model_from_config_rejects_unknown_choices():
    from configs import default

    config = default.get_config()
    model = models.build_model(config.model, num_classes=C)
    assert isinstance(model.fusion, models.MultiStageCrossAttention)
    assert model.head.num_classes == C
    for key, bad in (
        ("dtype", "float16"),
        ("fusion", "late"),
        ("head", "svm"),
        ("head_norm", "batch"),
    ):
        config = default.get_config()
        config.model[key] = bad
        with pytest.raises(ValueError, match=rf"^model\.{key} must be one of .*; got '{bad}'$"):
            models.build_model(config.model, num_classes=C)


def _head_input(model, params, visual, audio, mask):
    _, state = model.apply(params, visual, audio, mask, mutable=["intermediates"])
    (fused,) = state["intermediates"]["head_input"]
    return np.asarray(fused)


@pytest.mark.parametrize("head_norm", ["layernorm", "video_rms"])
def test_head_norm_gives_every_fusion_the_same_scale(head_norm):
    """Without it the dense skip sum doubles the full model's (and its gate-0 control's)
    embeddings relative to concat; with it full, gate-0, concat and the single
    modalities feed the head features of the same scale: unit variance per snippet
    (layernorm) or unit mean square per video (video_rms). Padded snippets stay zero."""
    visual, audio, mask = _inputs()
    variants = {
        "full": dict(),
        "gate0": dict(attention_gate_frozen=True),
        "concat": dict(fusion="concat"),
        "visual": dict(fusion="visual"),
        "stages3": dict(num_stages=3),
    }
    raw_scale, normed_scale = {}, {}
    for name, kwargs in variants.items():
        for norm, store in (("none", raw_scale), (head_norm, normed_scale)):
            model = _model(head_norm=norm, **kwargs)
            params = model.init(jax.random.key(0), visual, audio, mask)
            fused = _head_input(model, params, visual, audio, mask)
            assert np.all(fused[1, T - 3 :] == 0)
            valid = fused[mask]  # [valid snippets, F]
            store[name] = float(np.mean(valid**2))
            if norm == "layernorm":
                np.testing.assert_allclose(valid.var(axis=-1), 1.0, atol=1e-3)
                np.testing.assert_allclose(valid.mean(axis=-1), 0.0, atol=1e-4)
            elif norm == "video_rms":
                for b in range(B):
                    np.testing.assert_allclose(np.mean(fused[b][mask[b]] ** 2), 1.0, rtol=1e-4)
    # The confound that head_norm removes: 2 dense stages with the gate at 0 feed the head
    # twice the embedding, i.e. 4x the mean square of concat (same embedding init).
    assert raw_scale["gate0"] == pytest.approx(4 * raw_scale["concat"], rel=1e-5)
    assert max(normed_scale.values()) == pytest.approx(min(normed_scale.values()), rel=1e-2)


def test_head_norm_none_is_the_identity_and_adds_no_parameters():
    visual, audio, mask = _inputs()
    model = _model()
    assert model.head_norm is None
    params = model.init(jax.random.key(0), visual, audio, mask)
    assert "head_norm" not in params["params"]
    normed = _model(head_norm="layernorm")
    assert "head_norm" in normed.init(jax.random.key(0), visual, audio, mask)["params"]
