"""`avloc make-benchmark`: semi-synthetic features on the real annotations, in the real
on-disk formats. The builders read them back (shapes, snippet rates, dtypes, row
alignment), the output is a pure function of the seed, and the planted structure is there.

Needs the real annotation files in ../shared/data (skipped with a reason when absent)."""

import json

import h5py
import numpy as np
import pytest

from avloc_jax.benchmark import generator as benchmark
from avloc_jax.cli import main as cli
from avloc_jax.data import annotations as ann
from avloc_jax.data import datasets, synthetic_features
from tfds_builders import build as build_data

ROOT = benchmark.default_annotations_root()
needs_anet = pytest.mark.skipif(
    not (ROOT / "activitynet12" / "subset.npy").is_file(),
    reason=f"real ActivityNet1.2 annotations not found in {ROOT / 'activitynet12'}",
)
needs_ave = pytest.mark.skipif(
    not (ROOT / "ave" / "audio_feature_noisy.h5").is_file(),
    reason=f"real AVE files not found in {ROOT / 'ave'}",
)


def _anet_config(**kw):
    c = benchmark.default_config("activitynet12")
    c.num_classes, c.num_train, c.num_test, c.visual_dim, c.audio_dim = 6, 8, 5, 16, 8
    c.update(kw)
    return c


def _ave_config():
    c = benchmark.default_config("ave")
    c.num_train, c.num_val, c.num_test, c.num_noisy, c.visual_dim = 12, 4, 4, 3, 16
    return c


def _load_objects(path):
    return np.load(path, allow_pickle=True, encoding="bytes")


@pytest.fixture(scope="module")
def anet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anet")
    manifest = benchmark.make_activitynet12(tmp / "src", config=_anet_config(), seed=3)
    data = build_data.build("activitynet12", tmp / "data", manual_dir=tmp / "src")
    return tmp, manifest, data


@needs_anet
def test_activitynet_files_read_back_by_the_builder(anet):
    tmp, manifest, _ = anet
    src = tmp / "src"
    real = ann.read_layout(ROOT / "activitynet12", "activitynet12")
    sub = ann.read_layout(src / benchmark.ANET_ANNOTATIONS, "activitynet12")
    rows = manifest["rows"]
    assert len(sub) == len(rows) == 13 and len(sub.class_names) == 6
    assert manifest["counts"] == {"training": 8, "validation": 5}
    # Row alignment: the subset rows are the real rows (ids, durations, segments).
    assert sub.video_ids == tuple(real.video_ids[r] for r in rows)
    np.testing.assert_allclose(sub.durations, real.durations[rows])
    for i, r in enumerate(rows):
        np.testing.assert_allclose(
            np.asarray(sub.segments[i]).reshape(-1, 2), np.asarray(real.segments[r]).reshape(-1, 2)
        )
        assert [sub.class_names[c] for c in sub.segment_classes(i)] == [
            real.class_names[c] for c in real.segment_classes(r)
        ]
    # Same dtypes as the real files.
    for name in ("subset.npy", "videoname.npy", "url.npy", "duration.npy", "classlist.npy"):
        assert (
            _load_objects(src / benchmark.ANET_ANNOTATIONS / name).dtype.kind
            == _load_objects(ROOT / "activitynet12" / name).dtype.kind
        )
    # Snippet rates: visual 0.64 s, audio 0.96 s, aligned object arrays.
    visual, audio = (
        _load_objects(src / benchmark.ANET_VISUAL),
        _load_objects(src / benchmark.ANET_AUDIO),
    )
    assert visual.dtype == object and len(visual) == len(audio) == len(rows)
    for i, d in enumerate(sub.durations):
        assert visual[i].shape == (int(np.ceil(d / 0.64)), 16) and visual[i].dtype == np.float32
        assert audio[i].shape == (int(np.ceil(d / 0.96)), 8) and audio[i].dtype == np.float32
        assert visual[i].min() >= 0 and audio[i].min() >= 0  # softplus: non-negative


@needs_anet
def test_activitynet_pipeline_loads_the_build(anet):
    tmp, manifest, _ = anet
    ds = datasets.load_dataset("activitynet12", tmp / "data", heldout_fraction=0.0)
    meta = ds.metadata
    assert len(meta.class_names) == 6 and (meta.visual_dim, meta.audio_dim) == (16, 8)
    visual = _load_objects(tmp / "src" / benchmark.ANET_VISUAL)
    sub = ann.read_layout(tmp / "src" / benchmark.ANET_ANNOTATIONS, "activitynet12")
    test = ds.split("validation")
    assert len(test) == 5 and len(ds.split("training")) == 8
    by_id = {vid: i for i, vid in enumerate(sub.video_ids)}
    for k in range(len(test)):
        record = test[k]
        i = by_id[record["video_id"]]
        np.testing.assert_array_equal(record["visual"], visual[i])
        assert record["audio"].shape == (
            len(visual[i]),
            8,
        )  # audio resampled onto the visual snippets
        assert record["labels"].sum() >= 1


@needs_anet
def test_activitynet_deterministic_and_seed_dependent(tmp_path):
    config = _anet_config(num_train=3, num_test=2)
    a = benchmark.make_activitynet12(tmp_path / "a", config=config, seed=1)
    b = benchmark.make_activitynet12(tmp_path / "b", config=config, seed=1)
    c = benchmark.make_activitynet12(tmp_path / "c", config=config, seed=2)
    assert a["rows"] == b["rows"]
    for name in (benchmark.ANET_VISUAL, benchmark.ANET_AUDIO):
        xa, xb, xc = (_load_objects(tmp_path / k / name) for k in "abc")
        for u, v in zip(xa, xb):
            np.testing.assert_array_equal(u, v)
        assert a["rows"] != c["rows"] or any(not np.array_equal(u, v) for u, v in zip(xa, xc))
    assert (tmp_path / "a" / benchmark.ANET_ANNOTATIONS / "subset.npy").read_bytes() == (
        tmp_path / "b" / benchmark.ANET_ANNOTATIONS / "subset.npy"
    ).read_bytes()
    # Refuses to replace without overwrite; the CLI says so.
    with pytest.raises(FileExistsError):
        benchmark.make_activitynet12(tmp_path / "a", config=config, seed=1)
    argv = [
        "make-benchmark",
        "activitynet12",
        "--out",
        str(tmp_path / "a"),
        "--num-train",
        "3",
        "--num-test",
        "2",
    ]
    assert cli.main(argv) == 1
    assert cli.main(argv + ["--overwrite", "--visual-dim", "8"]) == 0
    assert _load_objects(tmp_path / "a" / benchmark.ANET_VISUAL)[0].shape[1] == 8
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


@needs_anet
def test_planted_structure(anet):
    tmp, manifest, _ = anet
    structure = np.load(tmp / "src" / "structure.npz")
    names = list(manifest["classes"])
    kinds = {n: info["kind"] for n, info in manifest["classes"].items()}
    assert {"pair", "silent", "distinct"} <= set(kinds.values())
    for n, info in manifest["classes"].items():
        c = names.index(n)
        if info["kind"] == "pair":  # visually near-identical to its partner, distinct audio
            p = names.index(info["partner"])
            assert structure["visual"][c] @ structure["visual"][p] > 0.95
            assert abs(structure["audio"][c] @ structure["audio"][p]) < 0.9
        if info["kind"] == "silent":
            assert np.all(structure["audio"][c] == 0)

    # Silent classes leave the audio untouched inside their segments; others change it.
    config = _anet_config()
    st = synthetic_features.make_class_structure(6, config, 3)
    silent = st.kinds.index("silent")
    loud = st.kinds.index("distinct")
    for label, same in ((silent, True), (loud, False)):
        with_seg = synthetic_features.synthesize_video(
            np.random.default_rng(0), 60.0, [(10.0, 30.0)], [label], st, config
        )
        without = synthetic_features.synthesize_video(
            np.random.default_rng(0), 60.0, [], [], st, config
        )
        assert np.array_equal(with_seg[1], without[1]) == same
        assert not np.array_equal(with_seg[0], without[0])  # vision always sees the action


@pytest.fixture(scope="module")
def ave(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ave")
    manifest = benchmark.make_ave(tmp / "src", config=_ave_config(), seed=4)
    build_data.build("ave", tmp / "data", builder_config="weak", manual_dir=tmp / "src")
    return tmp, manifest


@needs_ave
def test_ave_files_read_back_by_the_builder(ave):
    tmp, manifest = ave
    src = tmp / "src"
    real = ann.read_ave_annotations(ROOT / "ave" / "Annotations.txt")
    sub = ann.read_ave_annotations(src / "Annotations.txt")
    rows = manifest["rows"]
    assert len(sub) == len(rows) == 20
    assert sub.video_ids == tuple(real.video_ids[r] for r in rows)
    np.testing.assert_array_equal(sub.starts, real.starts[rows])
    with h5py.File(src / "visual_feature_vec.h5") as f:
        assert f["avadataset"].shape == (20, 10, 16) and f["avadataset"].dtype == np.float32
    with h5py.File(src / "audio_feature.h5") as f:
        assert f["avadataset"].shape == (20, 10, 128)
    with h5py.File(src / "audio_feature_noisy.h5") as f:
        assert (
            f["avadataset"].shape == (3, 10, 128) and f["avadataset"].dtype == np.float64
        )  # as the real file

    ds = datasets.load_dataset("ave", tmp / "data", builder_config="weak")
    counts = {s: len(ds.split(s)) for s in ("train", "val", "test")}
    assert counts == {"train": 12 + 3, "val": 4, "test": 4}
    # Each split holds the chosen real rows of that split, in the split file's order.
    real_orders = {
        s: ann.read_ave_order(ROOT / "ave" / f"{s}_order.h5", len(real))
        for s in ("train", "val", "test")
    }
    labels = ann.ave_snippet_labels(sub)  # class index = first appearance in the subset file
    assert ds.metadata.class_names == sub.class_names
    for split in ("val", "test"):
        chosen = [r for r in real_orders[split].tolist() if r in set(rows)]
        source = ds.split(split)
        assert [source[k]["video_id"] for k in range(len(source))] == [
            real.video_ids[r] for r in chosen
        ]
        for k, r in enumerate(chosen):
            i = rows.index(r)
            np.testing.assert_array_equal(source[k]["snippet_labels"], labels[i])
            assert sub.class_names[sub.classes[i]] == real.class_names[real.classes[r]]
            np.testing.assert_array_equal(
                source[k]["snippet_labels"] == len(sub.class_names),
                ann.ave_snippet_labels(real)[r] == 28,
            )
    noisy = ds.split("train")[len(ds.split("train")) - 1]
    assert noisy["video_id"].startswith("noisy_") and noisy["labels"].sum() == 0


@needs_ave
def test_ave_background_audio_is_real(ave):
    tmp, manifest = ave
    real = ann.read_h5_array(ROOT / "ave" / "audio_feature_noisy.h5")
    written = ann.read_h5_array(tmp / "src" / "audio_feature_noisy.h5")
    config = _ave_config()
    st = synthetic_features.make_class_structure(28, config, 4)
    for i, row in enumerate(manifest["noisy_rows"]):
        _, synth = synthetic_features.synthesize_video(
            np.random.default_rng([4, 13, row]), 10.0, [], [], st, config
        )
        np.testing.assert_allclose(
            written[i] - synth, real[row] / manifest["real_audio_std"], atol=1e-5
        )
    meta = json.loads((tmp / "src" / "benchmark.json").read_text())
    assert meta["counts"]["noisy"] == 3 and meta["flavour"] == "ave"


# ----------------------------------------------------------------------------- conditions
# The pre-registered benchmark conditions (docs/benchmark.md): each switch changes the
# planted signal as described, is deterministic from the seed, and, off, changes nothing.

_LOG2 = np.log(2.0)  # softplus(0): a snippet that carries nothing, with the noise off


def _clean_config(**kw):
    """No noise, no scene offset, no music, no context: features = softplus(signal)."""
    c = _anet_config(noise_std=0.0, scene_std=0.0, music_probability=0.0,
                     context_strength=0.0, max_misalignment_seconds=0.0)  # fmt: skip
    c.update(kw)
    return c


def _synth(config, segments, label, seed=0, duration=60.0):
    st = synthetic_features.make_class_structure(6, config, 3)
    label = st.kinds.index("distinct") if label is None else label
    return synthetic_features.synthesize_video(
        np.random.default_rng([seed, 11]), duration, segments, [label] * len(segments), st,
        config, synthetic_features.Conditions.from_config(config),
    )  # fmt: skip


def _sounding(audio):
    return ~np.isclose(audio, _LOG2).all(axis=1)  # [Ta] snippets with any signal


def test_conditions_off_change_nothing():
    config = _anet_config()
    off = synthetic_features.Conditions.from_config(config)
    assert not off.active
    st = synthetic_features.make_class_structure(6, config, 3)
    args = (60.0, [(10.0, 30.0), (40.0, 50.0)], [1, 2], st, config)
    with_off = synthetic_features.synthesize_video(np.random.default_rng(5), *args, off)
    without = synthetic_features.synthesize_video(np.random.default_rng(5), *args)
    for u, v in zip(with_off, without):
        assert u.tobytes() == v.tobytes()
    with pytest.raises(ValueError, match="audio_cue_fraction"):
        synthetic_features.Conditions.from_config(_anet_config(audio_cue_fraction=0.0))


def test_sparse_audio_cue_limits_the_sound_to_its_fraction_of_the_action():
    segments = [(10.0, 34.0)]  # 24 s: 25 audio snippets of 0.96 s
    full = _sounding(_synth(_clean_config(), segments, None)[1])
    assert full.sum() == 25
    for seed in range(4):
        visual_cue, audio = _synth(_clean_config(audio_cue_fraction=0.25), segments, None, seed)
        sound = _sounding(audio)
        # 25% of 24 s = 6 s: at most 7 audio snippets, all inside the action, contiguous.
        assert 5 <= sound.sum() <= 7 and not (sound & ~full).any()
        idx = np.flatnonzero(sound)
        assert idx[-1] - idx[0] + 1 == len(idx)
        # The sound's energy inside the action is the cue's share of the full sound's.
        energy = lambda a: float(((a - _LOG2) ** 2)[full].sum())  # noqa: E731
        ratio = energy(audio) / energy(_synth(_clean_config(), segments, None, seed)[1])
        assert ratio == pytest.approx(sound.sum() / full.sum())
        # The visible action is unchanged.
        np.testing.assert_array_equal(visual_cue, _synth(_clean_config(), segments, None, seed)[0])
    positions = {
        int(np.flatnonzero(_sounding(_synth(_clean_config(audio_cue_fraction=0.25),
                                            segments, None, seed)[1]))[0])
        for seed in range(8)
    }  # fmt: skip
    assert len(positions) > 1  # the cue's place inside the action is random
    # A cue shorter than a snippet still sounds once.
    short = _sounding(_synth(_clean_config(audio_cue_fraction=0.01), [(10.0, 14.0)], None)[1])
    assert short.sum() == 1


def test_per_segment_offsets_shift_each_instance_on_its_own():
    segments = [(5.0, 15.0), (30.0, 40.0), (45.0, 55.0)]  # 10 s apart at least

    def onsets(sound):  # the first sounding audio snippet near each instance
        return [
            int(np.flatnonzero(sound & _cover_snippets(len(sound), start - 3, end + 3))[0])
            for start, end in segments
        ]

    base = onsets(_sounding(_synth(_clean_config(), segments, None)[1]))
    shifts = []
    for seed in range(3):
        visual, audio = _synth(
            _clean_config(segment_misalignment_seconds=2.0), segments, None, seed
        )
        np.testing.assert_array_equal(visual, _synth(_clean_config(), segments, None, seed)[0])
        shift = [o - b for o, b in zip(onsets(_sounding(audio)), base)]
        assert all(abs(x) <= 3 for x in shift)  # |δ| ≤ 2 s ≈ 2.1 snippets of 0.96 s
        shifts.append(tuple(shift))
    assert any(len(set(s)) > 1 for s in shifts)  # per instance, not one shift per video


def _cover_snippets(count, start, end, seconds=0.96):
    centres = (np.arange(count) + 0.5) * seconds
    return (centres >= start) & (centres < end)


def test_silent_and_occluded_stretches_empty_one_modality():
    segments = [(0.0, 61.0)]  # one action over every snippet of the 60 s video
    visual, audio = _synth(_clean_config(silent_stretch_prob=1.0), segments, None)
    silent = ~_sounding(audio)
    # One contiguous stretch of 30% of 60 s = 18 s (18-19 audio snippets of 0.96 s).
    idx = np.flatnonzero(silent)
    assert 18 <= len(idx) <= 19 and idx[-1] - idx[0] + 1 == len(idx)
    np.testing.assert_array_equal(visual, _synth(_clean_config(), segments, None)[0])
    visual, audio = _synth(_clean_config(occluded_stretch_prob=1.0), segments, None)
    blind = np.isclose(visual, _LOG2).all(axis=1)
    idx = np.flatnonzero(blind)
    assert 28 <= len(idx) <= 29 and idx[-1] - idx[0] + 1 == len(idx)  # 18 s / 0.64 s
    np.testing.assert_array_equal(audio, _synth(_clean_config(), segments, None)[1])
    # With noise on: only the signal goes; the noise and scene offset are untouched
    # (audio_strength = music_strength = 0 gives the same draws without any signal).
    noisy = dict(music_probability=1.0, noise_std=1.0, scene_std=0.6)
    _, with_stretch = _synth(_clean_config(silent_stretch_prob=1.0, **noisy), segments, None)
    _, plain = _synth(_clean_config(**noisy), segments, None)
    _, nothing = _synth(_clean_config(audio_strength=0.0, music_strength=0.0, **noisy),
                        segments, None)  # fmt: skip
    inside = silent
    np.testing.assert_array_equal(with_stretch[inside], nothing[inside])
    np.testing.assert_array_equal(with_stretch[~inside], plain[~inside])
    # Probability 0.5: some videos get a stretch, some do not (seeded, per video).
    got = [
        (~_sounding(_synth(_clean_config(silent_stretch_prob=0.5), segments, None, s)[1])).any()
        for s in range(12)
    ]
    assert 0 < sum(got) < 12


def test_conditions_are_deterministic_from_the_seed():
    config = _anet_config(segment_misalignment_seconds=2.0, audio_cue_fraction=0.3,
                          silent_stretch_prob=0.5, occluded_stretch_prob=0.5)  # fmt: skip
    segments = [(5.0, 20.0), (30.0, 50.0)]
    a = _synth(config, segments, None, seed=1)
    b = _synth(config, segments, None, seed=1)
    c = _synth(config, segments, None, seed=2)
    for u, v in zip(a, b):
        assert u.tobytes() == v.tobytes()
    assert any(not np.array_equal(u, v) for u, v in zip(a, c))


@needs_anet
def test_make_benchmark_switches_reach_the_files(tmp_path):
    """The CLI flags set the conditions; the visual features of a sparse-audio benchmark
    are those of the default one, the audio differs; the manifest records the setting."""
    base = ["make-benchmark", "activitynet12", "--num-train", "3", "--num-test", "2",
            "--num-classes", "6", "--visual-dim", "8", "--audio-dim", "8"]  # fmt: skip
    assert cli.main(base + ["--out", str(tmp_path / "off")]) == 0
    assert cli.main(base + ["--out", str(tmp_path / "on"), "--audio-cue-fraction", "0.25"]) == 0
    manifest = json.loads((tmp_path / "on" / "benchmark.json").read_text())
    assert manifest["params"]["audio_cue_fraction"] == 0.25
    off_v, on_v = (_load_objects(tmp_path / k / benchmark.ANET_VISUAL) for k in ("off", "on"))
    off_a, on_a = (_load_objects(tmp_path / k / benchmark.ANET_AUDIO) for k in ("off", "on"))
    for u, v in zip(off_v, on_v):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(off_a, on_a))
