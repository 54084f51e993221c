"""The one snippet-sampling rule (avloc_jax/data/sampling.py) and its two users: the host
pipeline (numpy; `sample_indices` gives its indices) and the device-resident pipeline
(jax.numpy inside `device_data.sample_batch`).

Property tests (hypothesis) for every mode and length: indices increasing and in range;
every valid index (every crop start) reachable; numpy and jax.numpy give the same indices
from the same random numbers; host and device index distributions agree (χ² test).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from avloc_jax.data import device_data, sampling

MODES = sampling.SAMPLING_MODES
SCORES_SIZE = 256  # the jnp path gets scores of one size, so each (mode, L) compiles once


def _positions_batch(lengths, max_len):
    """Device-resident data whose visual feature at snippet t is t (so a sampled batch
    shows which snippets it took)."""
    n = len(lengths)
    mask = np.arange(max_len)[None, :] < np.asarray(lengths)[:, None]
    positions = np.broadcast_to(np.arange(max_len, dtype=np.float32), (n, max_len))
    return {
        "visual": jnp.asarray((positions * mask)[..., None]),
        "audio": jnp.zeros((n, max_len, 1), jnp.float32),
        "mask": jnp.asarray(mask),
        "labels": jnp.ones((n, 1), jnp.float32),
    }


@functools.cache
def _device_sampler(num_snippets, mode, batch_size):
    def sample(data, step):
        return device_data.sample_batch(
            data, step, batch_size=batch_size, num_snippets=num_snippets, sampling=mode, seed=0
        )

    return jax.jit(sample)


def device_indices(lengths, num_snippets, mode, max_len, step=0):
    """[N, L] indices and [N, L] mask that `device_data.sample_batch` takes at `step`, with
    the whole split as one batch (one row per video, each with its own random numbers).
    Rows come in the epoch's permuted order."""
    data = _positions_batch(lengths, max_len)
    batch = _device_sampler(num_snippets, mode, len(lengths))(data, jnp.int32(step))
    return np.asarray(batch["visual"][..., 0]).astype(np.int64), np.asarray(batch["mask"])


@functools.cache
def _jnp_rule(num_snippets, mode):
    return jax.jit(
        lambda n, s, u: sampling.snippet_indices(jnp, n, num_snippets, mode, scores=s, offset=u)
    )


# ----------------------------------------------------------------------------- host


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 600),
    num_snippets=st.integers(1, 80),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_host_indices_increase_and_stay_in_range(length, num_snippets, mode, seed):
    idx = sampling.sample_indices(length, num_snippets, mode, np.random.default_rng(seed))
    assert idx.dtype == np.int64
    assert len(idx) == min(length, num_snippets)
    assert np.all(np.diff(idx) > 0)
    assert idx[0] >= 0 and idx[-1] < length
    if length <= num_snippets:
        np.testing.assert_array_equal(idx, np.arange(length))
    elif mode == "crop":
        assert np.all(np.diff(idx) == 1)
    elif mode == "uniform":  # one index in each cell [floor(k·n/L), floor((k+1)·n/L))
        k = np.arange(num_snippets)
        assert np.all(idx >= k * length // num_snippets)
        assert np.all(idx < (k + 1) * length // num_snippets)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("length", "num_snippets"), [(32, 16), (37, 8), (9, 8), (50, 1)])
def test_host_reaches_every_valid_index(mode, length, num_snippets):
    rng = np.random.default_rng(0)
    draws = [sampling.sample_indices(length, num_snippets, mode, rng) for _ in range(3000)]
    reached = np.unique(np.concatenate(draws))
    np.testing.assert_array_equal(reached, np.arange(length))
    if mode == "crop":
        starts = np.unique([d[0] for d in draws])
        np.testing.assert_array_equal(starts, np.arange(length - num_snippets + 1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length", [5, 16, 40])
def test_host_draws_exactly_the_documented_random_numbers(mode, length):
    # random: `length` float32 scores; uniform and crop: one float32 offset; a video no
    # longer than L: nothing (the rng is left as it was).
    rng, reference = np.random.default_rng(7), np.random.default_rng(7)
    idx = sampling.sample_indices(length, 16, mode, rng)
    if length <= 16:
        expected = np.arange(length)
    else:
        scores = reference.random(length, dtype=np.float32) if mode == "random" else None
        offset = reference.random(dtype=np.float32) if mode != "random" else None
        expected = sampling.snippet_indices(np, length, 16, mode, scores=scores, offset=offset)
    np.testing.assert_array_equal(idx, expected)
    assert rng.random() == reference.random()  # the same numbers were consumed


def test_uniform_is_uniform_inside_each_cell():
    # 37 snippets to 8: cells of width 4 or 5. Over 4000 draws each cell's offset must be
    # uniform over its width (χ² goodness of fit; fixed seed, so a fixed p).
    rng = np.random.default_rng(3)
    length, num_snippets = 37, 8
    draws = np.stack(
        [sampling.sample_indices(length, num_snippets, "uniform", rng) for _ in range(4000)]
    )
    k = np.arange(num_snippets)
    low, high = k * length // num_snippets, (k + 1) * length // num_snippets
    for cell in range(num_snippets):
        counts = np.bincount(draws[:, cell] - low[cell], minlength=high[cell] - low[cell])
        assert len(counts) == high[cell] - low[cell]
        assert stats.chisquare(counts).pvalue > 1e-3


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 40),
    num_snippets=st.integers(1, 24),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_host_uniforms_are_float32_in_the_shapes_the_rule_takes(length, num_snippets, mode, seed):
    # float32 also for a short video's stand-in zeros: the rule's product must round as on
    # the device whatever the numbers (sampling.py's float32 contract).
    numbers = sampling.host_uniforms(length, num_snippets, mode, np.random.default_rng(seed))
    shapes = sampling.uniform_shapes(mode, max(length, num_snippets))
    assert {name: u.shape for name, u in numbers.items()} == shapes
    for u in numbers.values():
        assert u.dtype == np.float32
        assert np.all((u >= 0) & (u < 1))
        if length <= num_snippets:
            assert not np.any(u)  # nothing drawn, zeros stand in


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(1, 30),
    num_snippets=st.integers(1, 16),
    mode=st.sampled_from(MODES),
    dtype=st.sampled_from([np.float16, np.float64, np.int32, np.float32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_sampled_features_are_float32_rows_at_the_indices(length, num_snippets, mode, dtype, seed):
    # Records may hold float16 / float64 / integer features: the example is float32 either
    # way, row i is the video's row at index i (exactly, after the cast), zero past a short
    # video's end.
    rng = np.random.default_rng(seed)
    visual = (np.arange(length)[:, None] * 3 + np.arange(2)).astype(dtype)
    audio = rng.integers(-50, 50, size=(length, 3, 2)).astype(dtype)
    numbers = sampling.host_uniforms(length, num_snippets, mode, rng)
    out = sampling.sample_snippets(
        np, {"visual": visual, "audio": audio}, length, num_snippets, mode, numbers
    )
    keep = sampling.snippet_indices(np, length, num_snippets, mode, **numbers)
    valid = min(length, num_snippets)
    np.testing.assert_array_equal(out["mask"], np.arange(num_snippets) < valid)
    for name, values in (("visual", visual), ("audio", audio)):
        assert out[name].dtype == np.float32
        assert out[name].shape == (num_snippets,) + values.shape[1:]
        np.testing.assert_array_equal(out[name][:valid], values[keep[:valid]].astype(np.float32))
        assert not np.any(out[name][valid:])


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="sampling must be one of"):
        sampling.sample_indices(100, 16, "nope", np.random.default_rng(0))


# ------------------------------------------------------------------ numpy == jax.numpy


@settings(max_examples=150, deadline=None)
@given(
    length=st.integers(1, SCORES_SIZE),
    num_snippets=st.sampled_from([1, 7, 16, 64]),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
    offset=st.one_of(
        st.floats(0.0, 1.0, exclude_max=True, width=32),
        st.just(np.nextafter(np.float32(1), np.float32(0))),  # the largest float32 < 1
    ),
)
def test_numpy_and_jax_pick_the_same_indices(length, num_snippets, mode, seed, offset):
    scores = np.random.default_rng(seed).random(SCORES_SIZE, dtype=np.float32)
    offset = np.float32(offset)
    host = sampling.snippet_indices(np, length, num_snippets, mode, scores=scores, offset=offset)
    device = _jnp_rule(num_snippets, mode)(jnp.int32(length), scores, offset)
    np.testing.assert_array_equal(host, np.asarray(device))
    valid = host[: min(length, num_snippets)]
    assert np.all(np.diff(valid) > 0) and valid[-1] < length
    assert np.all(host[min(length, num_snippets) :] == length - 1)  # padding


def test_ties_and_cell_edges_give_the_same_indices_in_both_namespaces():
    # Equal scores: the stable sort keeps the earliest positions, in both.
    ties = np.zeros(SCORES_SIZE, np.float32)
    for xp_result in (
        sampling.snippet_indices(np, 100, 16, "random", scores=ties),
        np.asarray(_jnp_rule(16, "random")(jnp.int32(100), ties, np.float32(0))),
    ):
        np.testing.assert_array_equal(xp_result, np.arange(16))
    # Many ties among 300 scores (3 values): numpy's default (unstable) argsort keeps
    # another subset of the tied ones than jax's stable sort; the rule asks for stable.
    many = np.random.default_rng(0).integers(0, 3, 300).astype(np.float32) / 4
    host = sampling.snippet_indices(np, 300, 100, "random", scores=many)
    device = _jnp_rule(100, "random")(jnp.int32(300), many, np.float32(0))
    np.testing.assert_array_equal(host, np.asarray(device))
    np.testing.assert_array_equal(host, np.sort(np.argsort(many, stable=True)[:100]))
    # u = float32(5/6) times a cell or start count of 6 is 5.0 in float32 (4.99… in
    # float64): both namespaces compute in float32 and agree on 5.
    u = np.float32(5 / 6)
    uniform = 6 * np.arange(8) + 5  # 48 snippets to 8: cells of width 6
    crop = 5 + np.arange(8)  # 13 snippets to 8: 6 starts
    for length, mode, expected in ((48, "uniform", uniform), (13, "crop", crop)):
        host = sampling.snippet_indices(np, length, 8, mode, offset=u)
        device = _jnp_rule(8, mode)(jnp.int32(length), np.zeros(SCORES_SIZE, np.float32), u)
        np.testing.assert_array_equal(host, expected)
        np.testing.assert_array_equal(np.asarray(device), expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length", [5, 16, 40])
def test_both_pipelines_build_their_examples_with_the_one_function(mode, length):
    """The host example (`input_pipeline.train_example`) and the device batch
    (`device_data.sample_batch`) are `sampling.sample_snippets` of the video: fed the
    numbers each pipeline drew, it gives their features and mask exactly, padding zeros
    included."""
    from avloc_jax.data import input_pipeline

    num_snippets, max_len = 16, 48
    rng = np.random.default_rng(length)
    visual = rng.normal(size=(length, 3)).astype(np.float32)
    audio = rng.normal(size=(length, 2)).astype(np.float32)
    record = {"visual": visual, "audio": audio, "labels": np.ones(4), "video_id": "v"}

    host = input_pipeline.train_example(
        record, np.random.default_rng(7), num_snippets=num_snippets, sampling=mode
    )
    uniforms = sampling.host_uniforms(length, num_snippets, mode, np.random.default_rng(7))
    features = {"visual": visual, "audio": audio}
    expected = sampling.sample_snippets(np, features, length, num_snippets, mode, uniforms)
    assert set(host) == {"visual", "audio", "mask", "labels"}
    for name in ("visual", "audio", "mask"):
        np.testing.assert_array_equal(host[name], expected[name])
    assert host["visual"].dtype == np.float32 and host["mask"].sum() == min(length, 16)

    # The device batch of one video: the same function with jax.numpy on the padded row.
    padded = {k: np.pad(v, ((0, max_len - length), (0, 0))) for k, v in features.items()}
    data = {
        **{k: jnp.asarray(v[None]) for k, v in padded.items()},
        "mask": jnp.asarray(np.arange(max_len) < length)[None],
        "labels": jnp.ones((1, 4), jnp.float32),
    }
    batch = device_data.sample_batch(
        data, jnp.int32(3), batch_size=1, num_snippets=num_snippets, sampling=mode, seed=0
    )
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0), 7919), 104729)
    keys = dict(zip(("scores", "offset"), jax.random.split(jax.random.fold_in(key, 3))))
    numbers = {
        name: np.asarray(jax.random.uniform(keys[name], shape))
        for name, shape in sampling.uniform_shapes(mode, max_len).items()
    }
    expected = sampling.sample_snippets(np, padded, length, num_snippets, mode, numbers)
    for name in ("visual", "audio", "mask"):
        np.testing.assert_array_equal(np.asarray(batch[name])[0], expected[name])


# ----------------------------------------------------------------------------- device


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 64), min_size=8, max_size=8),
    num_snippets=st.sampled_from([8, 16]),
    mode=st.sampled_from(MODES),
    step=st.integers(0, 10_000),
)
def test_device_indices_increase_and_stay_in_range(lengths, num_snippets, mode, step):
    idx, mask = device_indices(lengths, num_snippets, mode, max_len=64, step=step)
    # Rows come in the epoch's permuted order; each row's mask tells its valid count.
    assert sorted(mask.sum(axis=1).tolist()) == sorted(min(n, num_snippets) for n in lengths)
    for row, row_mask in zip(idx, mask):
        valid = row[row_mask]
        assert np.all(np.diff(valid) > 0) and valid[0] >= 0
        assert np.all(row[~row_mask] == 0)  # padding is zeroed
        if mode == "crop":
            assert np.all(np.diff(valid) == 1)


@pytest.mark.parametrize("mode", MODES)
def test_device_reaches_every_valid_index(mode):
    # Stride 2 (32 snippets to 16): the device sampler once drew its offset in
    # [0, stride - 1) and so only ever took even indices.
    idx, _ = device_indices([32] * 512, 16, mode, max_len=32)
    np.testing.assert_array_equal(np.unique(idx), np.arange(32))
    if mode == "crop":
        np.testing.assert_array_equal(np.unique(idx[:, 0]), np.arange(17))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("length", "num_snippets"), [(32, 16), (37, 8)])
def test_host_and_device_agree_in_distribution(mode, length, num_snippets):
    """χ² test of homogeneity on the index histograms of 2000 host and 2000 device draws
    (each draw adds its L indices; for crop, also the window starts). Seeds are fixed, so
    the p-value is a fixed number; 1e-3 leaves room for the test's own randomness while a
    biased sampler (e.g. even indices only) gives p ≈ 0."""
    draws = 2000
    rng = np.random.default_rng(1)
    host = np.stack(
        [sampling.sample_indices(length, num_snippets, mode, rng) for _ in range(draws)]
    )
    device, _ = device_indices([length] * draws, num_snippets, mode, max_len=length, step=3)
    columns = [(host.ravel(), device.ravel())]
    if mode == "crop":
        columns.append((host[:, 0], device[:, 0]))
    for h, d in columns:
        table = np.stack([np.bincount(h, minlength=length), np.bincount(d, minlength=length)])
        table = table[:, table.sum(axis=0) > 0]
        assert stats.chi2_contingency(table).pvalue > 1e-3
