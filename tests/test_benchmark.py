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
