"""TFDS builders: each one runs on small files written here in the exact public formats,
the examples are read back through `avloc_jax.data.datasets.load_dataset` (ArrayRecord, no
TensorFlow) and checked value by value; bad input raises DataError naming what is wrong
and leaves no dataset behind. With the real annotation files present, the builders run on
them (with tiny stand-in features) and give the published counts."""

import json
import pickle
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds
from test_annotations import (  # noqa: E402  (tests dir is on sys.path under pytest)
    REAL_ANET,
    REAL_AVE,
    REAL_THUMOS,
    needs_real_anet,
    needs_real_ave,
    needs_real_thumos,
    small_videos,
    write_annotations,
    write_wtalc_folder,
)

from avloc_jax.data import annotations as ann
from avloc_jax.data import datasets, input_pipeline
from avloc_jax.data.annotations import DataError
from tfds_builders import build as build_data

tfds.disable_progress_bar()


# ----------------------------------------------------------------------------- writers


def h5(path, data, key="avadataset"):
    with h5py.File(path, "w") as f:
        f[key] = data


AVE_CLASSES = ["Church bell", "Bark", "Banjo"]


def write_ave(folder, *, n=9, spatial=True, labels_h5=False, noisy=0, seed=0, dv=6, da=4):
    """AVE files as in AVE-ECCV18 data/: returns the arrays written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        start = int(rng.integers(0, 6))
        rows.append((AVE_CLASSES[i % 3], f"yt{i:03d}", start, int(rng.integers(start + 1, 11))))
    write_annotations(folder / "Annotations.txt", rows, header=True)
    visual = rng.normal(size=(n, 10, 2, 2, dv) if spatial else (n, 10, dv)).astype(np.float32)
    audio = rng.normal(size=(n, 10, da)).astype(np.float32)
    h5(folder / ("visual_feature.h5" if spatial else "visual_feature_vec.h5"), visual)
    h5(folder / "audio_feature.h5", audio)
    perm = rng.permutation(n)
    k = n // 3
    orders = {"train": perm[: n - 2 * k], "val": perm[n - 2 * k : n - k], "test": perm[n - k :]}
    for split, order in orders.items():
        h5(folder / f"{split}_order.h5", order.astype(np.int64), key="order")
    out = dict(rows=rows, visual=visual, audio=audio, orders=orders)
    if labels_h5:
        snippet = ann.ave_snippet_labels(ann.read_ave_annotations(folder / "Annotations.txt"))
        snippet[0] = 3  # labels.h5 wins over Annotations.txt: make row 0 differ (all background)
        h5(folder / "labels.h5", np.eye(4, dtype=np.float32)[snippet])
        out["snippet"] = snippet
    if noisy:
        out["noisy_visual"] = rng.normal(size=(noisy, 10, 2, 2, dv)).astype(np.float32)
        out["noisy_audio"] = rng.normal(size=(noisy, 10, da))  # float64, like the real file
        h5(folder / "visual_feature_noisy.h5", out["noisy_visual"])
        h5(folder / "audio_feature_noisy.h5", out["noisy_audio"])
        noisy_labels = np.zeros((noisy, 4), np.float32)
        noisy_labels[:, 3] = 1.0
        h5(folder / "labels_noisy.h5", noisy_labels)
    return out


def save_py2_style_object_array(path, arrays):
    """A pickled object .npy like W-TALC's feature files (pickle protocol 2; read back
    with encoding='bytes')."""
    arr = np.empty(len(arrays), dtype=object)
    for i, x in enumerate(arrays):
        arr[i] = x
    with open(path, "wb") as f:  # np.save pins protocol 4: write header + pickle by hand
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(arr))
        pickle.dump(arr, f, protocol=2)


def write_wtalc_dataset(
    folder,
    *,
    layout="activitynet12",
    videos=None,
    seed=0,
    dv=8,
    da=3,
    visual_folder=False,
    audio_object=False,
):
    """Annotation folder + visual (object .npy or folder) + audio (folder or object .npy).
    Audio has a different snippet count (resampled by the builder)."""
    folder = Path(folder)
    videos = videos if videos is not None else small_videos()
    rng = np.random.default_rng(seed)
    lay = ann.LAYOUTS[layout]
    classes = ["Archery", "Ballet"]
    ann_dir = folder / f"{lay.feature_prefix}-Annotations"
    write_wtalc_folder(
        ann_dir,
        classes=classes,
        videos=videos,
        duration_2d=layout == "thumos14",
        urls=layout == "activitynet12",
        classlist_name=lay.classlist,
    )
    if layout == "thumos14":  # the 101-class list sits beside the 20-class one
        np.save(ann_dir / "classlist.npy", np.array([b"Archery", b"Ballet", b"Other"]))
    ids = [v["id"] if layout == "activitynet12" else v["name"] for v in videos]
    visual = [rng.normal(size=(int(v["duration"] // 2), dv)).astype(np.float32) for v in videos]
    audio = [rng.normal(size=(int(v["duration"]), da)).astype(np.float32) for v in videos]
    if visual_folder:
        (folder / "visual").mkdir(parents=True)
        for vid, x in zip(ids, visual):
            np.save(folder / "visual" / f"{vid}.npy", x)
    else:
        save_py2_style_object_array(folder / f"{lay.feature_prefix}-I3D-JOINTFeatures.npy", visual)
    if audio_object:
        save_py2_style_object_array(folder / f"{lay.feature_prefix}-audio.npy", audio)
    else:
        (folder / "audio").mkdir(parents=True)
        for vid, x in zip(ids, audio):
            np.save(folder / "audio" / f"{vid}.npy", x)
    return dict(ids=ids, visual=visual, audio=audio, videos=videos, annotations=ann_dir)


def write_generic(folder, *, subsets=("training", "validation"), seed=0):
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    (folder / "visual").mkdir(parents=True)
    (folder / "audio").mkdir(parents=True)
    database, feats = {}, {}
    for i in range(6):
        vid = f"clip{i}"
        subset = subsets[i % len(subsets)]
        duration = 12.0 + i
        anns = [{"label": "jump" if i % 2 else "run", "segment": [1.0, 5.0]}] if i != 5 else []
        database[vid] = {"subset": subset, "duration": duration, "annotations": anns}
        v = rng.normal(size=(6 + i, 5)).astype(np.float32)
        a = rng.normal(size=(6 + i, 2)).astype(np.float32)
        np.save(folder / "visual" / f"{vid}.npy", v)
        np.save(folder / "audio" / f"{vid}.npy", a)
        feats[vid] = (v, a)
    (folder / "gt.json").write_text(json.dumps({"version": "x", "database": database}))
    return database, feats


def _build(dataset, data_dir, **kwargs):
    return build_data.build(dataset, data_dir, **kwargs)


def _no_dataset_left(data_dir, name):
    data_dir = Path(data_dir)
    leftovers = [p for p in data_dir.iterdir()] if data_dir.exists() else []
    assert not (data_dir / name).exists(), (
        f"partial dataset left: {list((data_dir / name).rglob('*'))}"
    )
    assert not [p for p in leftovers if p.name.startswith(".avloc-build")], leftovers


# ----------------------------------------------------------------------------- AVE


def test_ave_builder_round_trip(tmp_path):
    src = write_ave(tmp_path / "ave", spatial=True)
    path = _build("ave", tmp_path / "tfds", manual_dir=tmp_path / "ave")
    assert path == tmp_path / "tfds" / "ave" / "default" / "1.0.0"
    assert "tensorflow" not in sys.modules
    ds = datasets.load_dataset("ave", tmp_path / "tfds")
    meta = ds.metadata
    assert meta.task == "ave" and meta.class_names == tuple(AVE_CLASSES)
    assert (meta.visual_dim, meta.audio_dim) == (6, 4)
    assert (meta.train_split, meta.val_split, meta.test_split) == ("train", "val", "test")
    for split, order in src["orders"].items():
        source = ds.split(split)
        assert len(source) == len(order)
        np.testing.assert_array_equal(source.lengths, [10] * len(order))
        for i, row in enumerate(order):  # examples in split-file order
            r = source[i]
            c, vid, s, e = src["rows"][row]
            assert r["video_id"] == vid
            assert r["visual"].dtype == np.float32 and r["visual"].shape == (10, 6)
            np.testing.assert_allclose(
                r["visual"], src["visual"][row].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6
            )
            np.testing.assert_array_equal(r["audio"], src["audio"][row])
            np.testing.assert_array_equal(r["labels"], np.eye(3)[AVE_CLASSES.index(c)])
            expected = np.where((np.arange(10) >= s) & (np.arange(10) < e), AVE_CLASSES.index(c), 3)
            np.testing.assert_array_equal(r["snippet_labels"], expected)
            np.testing.assert_array_equal(r["segments"], [[s, e]])
            np.testing.assert_array_equal(r["segment_labels"], [AVE_CLASSES.index(c)])
            assert r["duration"] == 10.0


def test_builds_are_found_by_tfds_and_missing_ones_named(tmp_path):
    write_ave(tmp_path / "ave", noisy=2)
    data_dir = tmp_path / "tfds"
    path = _build("ave", data_dir, manual_dir=tmp_path / "ave", builder_config="weak")
    # The only config built is read without naming it; the folder itself opens the same.
    builder = datasets.open_builder("ave", data_dir)
    assert (builder.builder_config.name, str(builder.version)) == ("weak", "1.0.0")
    assert Path(str(builder.data_dir)) == path
    by_name = datasets.load_dataset("ave", data_dir)
    by_dir = datasets.load_dataset_dir(path)
    assert by_name.metadata == by_dir.metadata
    assert [r["video_id"] for r in by_name.split("train")] == [
        r["video_id"] for r in by_dir.split("train")
    ]
    with pytest.raises(FileNotFoundError, match=r"no dataset 'thumos14' in .*avloc build-data"):
        datasets.load_dataset("thumos14", data_dir)
    with pytest.raises(
        FileNotFoundError, match=r"weak: no complete build; expected version 9\.9\.9"
    ):
        datasets.load_dataset("ave", data_dir, builder_config="weak", version="9.9.9")
    (data_dir / "ave" / "default" / "1.0.0").mkdir(parents=True)  # an interrupted build
    with pytest.raises(FileNotFoundError, match=r"ave/default: no complete build.*dataset_info"):
        datasets.load_dataset("ave", data_dir)  # 'default' is preferred, and named
    (data_dir / "ave" / "default" / "1.0.0").rmdir()
    (data_dir / "ave" / "default").rename(data_dir / "ave" / "other")
    with pytest.raises(
        FileNotFoundError, match=r"choose a builder config among \['other', 'weak'\]"
    ):
        datasets.load_dataset("ave", data_dir)


@pytest.mark.parametrize("name", ["ave", "activitynet12", "thumos14"])
def test_stored_features_decode_to_records_with_tfds_mock_data(name):
    """tfds.testing.mock_data (no TensorFlow) fills each builder's stored feature spec with
    random examples; the reader turns them into the shared record's types."""
    from tensorflow_datasets.testing import mocking

    from tfds_builders import get_builder_class

    cls = get_builder_class(name)
    config = cls.BUILDER_CONFIGS[0] if cls.BUILDER_CONFIGS else None
    with mocking.mock_data(num_examples=3, policy=mocking.MockPolicy.USE_CODE):
        source = cls(config=config).as_data_source(split="train")
        records = datasets.RecordSource(source, name="train")
        assert len(records) == 3
        # (tfds 4.9.10's mock breaks batched __getitems__: its partial is not bound)
        for record in [records[0], records[1], records[2]]:
            assert isinstance(record["video_id"], str)
            assert record["duration"].dtype == np.float32 and record["duration"].shape == ()
            for key, dtype, rank in [
                ("visual", np.float32, 2),
                ("audio", np.float32, 2),
                ("labels", np.float32, 1),
                ("segments", np.float32, 2),
                ("segment_labels", np.int32, 1),
                ("snippet_labels", np.int32, 1),
            ]:
                assert record[key].dtype == dtype and record[key].ndim == rank, key
            assert record["segments"].shape[1] == 2
    assert "tensorflow" not in sys.modules


def test_ave_labels_h5_and_pooled_vec_file(tmp_path):
    src = write_ave(tmp_path / "ave", spatial=False, labels_h5=True)
    _build("ave", tmp_path / "tfds", manual_dir=tmp_path / "ave")
    ds = datasets.load_dataset("ave", tmp_path / "tfds")
    records = {r["video_id"]: r for split in ("train", "val", "test") for r in ds.split(split)}
    assert len(records) == 9
    for row, (_, vid, _, _) in enumerate(src["rows"]):
        np.testing.assert_array_equal(records[vid]["snippet_labels"], src["snippet"][row])
        np.testing.assert_array_equal(records[vid]["visual"], src["visual"][row])
    assert records["yt000"]["segments"].shape == (0, 2)  # row 0 is all background in labels.h5


def test_ave_weak_setting_adds_background_videos(tmp_path):
    src = write_ave(tmp_path / "ave", noisy=3)
    _build("ave", tmp_path / "tfds", manual_dir=tmp_path / "ave", builder_config="weak")
    from avloc_jax.common.config_overrides import apply_overrides
    from avloc_jax.data import loading
    from configs import default

    config = default.get_config()
    overrides = {"data.name": "ave", "data.data_dir": str(tmp_path / "tfds")}
    apply_overrides(config, {**overrides, "data.weak_setting": True})
    ds = loading.load_dataset(config)  # data.weak_setting picks the 'weak' build
    train = ds.split("train")
    assert len(train) == len(src["orders"]["train"]) + 3
    noisy = [train[i] for i in range(len(train)) if train[i]["video_id"].startswith("noisy_")]
    assert len(noisy) == 3
    for row, r in enumerate(noisy):
        assert r["audio"].dtype == np.float32
        np.testing.assert_allclose(r["audio"], src["noisy_audio"][row].astype(np.float32))
        np.testing.assert_allclose(
            r["visual"], src["noisy_visual"][row].mean(axis=(1, 2)), rtol=1e-5, atol=1e-6
        )
        assert not r["labels"].any()
        np.testing.assert_array_equal(r["snippet_labels"], [3] * 10)
    assert len(ds.split("test")) == len(src["orders"]["test"])  # weak videos only in train


@pytest.mark.parametrize(
    "corrupt, message",
    [
        ("nan", r"audio_feature.h5: audio features of row 4 \(video yt004\) contain NaN/Inf"),
        ("rows", r"visual_feature.h5: visual has 8 rows but Annotations.txt has 9 videos"),
        ("shape", r"audio_feature.h5: audio has shape \[9, 10\]; expected"),
        ("missing", r"ave: audio not found in .*audio_feature.h5"),
        ("onehot", r"labels.h5: row 2 \(video yt002\), snippet 5 is not one-hot"),
        ("noisy_event", r"labels_noisy.h5: row 1 has an event label"),
    ],
)
def test_ave_bad_inputs(tmp_path, corrupt, message):
    folder = tmp_path / "ave"
    write_ave(folder, labels_h5=corrupt == "onehot", noisy=2 if corrupt == "noisy_event" else 0)
    if corrupt == "nan":
        with h5py.File(folder / "audio_feature.h5", "r+") as f:
            f["avadataset"][4, 3, 1] = np.nan
    elif corrupt == "rows":
        h5(folder / "visual_feature.h5", np.zeros((8, 10, 2, 2, 6), np.float32))
    elif corrupt == "shape":
        h5(folder / "audio_feature.h5", np.zeros((9, 10), np.float32))
    elif corrupt == "missing":
        (folder / "audio_feature.h5").unlink()
    elif corrupt == "onehot":
        with h5py.File(folder / "labels.h5", "r+") as f:
            f["avadataset"][2, 5] = 0.0
    elif corrupt == "noisy_event":
        labels = np.zeros((2, 4), np.float32)
        labels[:, 3] = 1
        labels[1, 0] = 1
        h5(folder / "labels_noisy.h5", labels)
    with pytest.raises(DataError, match=message):
        _build(
            "ave",
            tmp_path / "tfds",
            manual_dir=folder,
            builder_config="weak" if corrupt == "noisy_event" else "default",
        )
    _no_dataset_left(tmp_path / "tfds", "ave")


@needs_real_ave
def test_real_ave_annotation_files_build(tmp_path):
    """Real Annotations.txt and order files, tiny stand-in features (row i = i)."""
    n = 4143
    visual = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, 10, 2)).copy()
    h5(tmp_path / "v.h5", visual)
    h5(tmp_path / "a.h5", np.zeros((n, 10, 1), np.float32))
    paths = {
        "annotations": REAL_AVE / "Annotations.txt",
        "visual": tmp_path / "v.h5",
        "audio": tmp_path / "a.h5",
    }
    paths.update({f"{s}_order": REAL_AVE / f"{s}_order.h5" for s in ("train", "val", "test")})
    _build("ave", tmp_path / "tfds", paths=paths)
    ds = datasets.load_dataset("ave", tmp_path / "tfds")
    assert [len(ds.split(s)) for s in ("train", "val", "test")] == [3339, 402, 402]
    assert ds.metadata.num_classes == 28 and ds.metadata.class_names[0] == "Church bell"
    closs = ann.read_h5_array(REAL_AVE / "labels_closs.h5")
    mil = ann.read_h5_array(REAL_AVE / "mil_labels.h5")
    test = ds.split("test")
    order = ann.read_ave_order(REAL_AVE / "test_order.h5", n)
    for i in range(len(test)):
        r = test[i]
        row = int(r["visual"][0, 0])  # the stand-in feature is the row index
        assert row == order[i]
        np.testing.assert_array_equal(r["snippet_labels"] != 28, closs[row].astype(bool))
        np.testing.assert_array_equal(r["labels"], mil[row, :28])


# ----------------------------------------------------------------------------- W-TALC


def test_activitynet12_builder_round_trip_and_heldout(tmp_path):
    src = write_wtalc_dataset(tmp_path / "anet")
    _build("activitynet12", tmp_path / "tfds", manual_dir=tmp_path / "anet")
    assert "tensorflow" not in sys.modules
    ds = datasets.load_dataset("activitynet12", tmp_path / "tfds", heldout_fraction=0.0)
    meta = ds.metadata
    assert meta.task == "detection" and meta.class_names == ("Archery", "Ballet")
    assert (meta.visual_dim, meta.audio_dim) == (8, 3)
    assert meta.tiou_thresholds == ann.LAYOUTS["activitynet12"].tiou_thresholds
    assert (meta.train_split, meta.test_split) == ("training", "validation")
    assert [ds.split("training")[i]["video_id"] for i in range(2)] == ["AAAAAAAAAAA", "CCCCCCCCCCC"]
    r = ds.split("validation")[0]
    assert r["video_id"] == "BBBBBBBBBBB"
    np.testing.assert_array_equal(r["visual"], src["visual"][1])  # [5, 8]
    assert r["audio"].shape == (5, 3)  # 10 audio snippets resampled onto 5 visual ones
    # Output snippet t sits at input position 2t + 0.5: the mean of audio 2t and 2t+1.
    np.testing.assert_allclose(
        r["audio"], (src["audio"][1][0::2] + src["audio"][1][1::2]) / 2, rtol=1e-5
    )
    np.testing.assert_array_equal(r["labels"], [1.0, 1.0])
    np.testing.assert_array_equal(r["segments"], [[0.0, 4.0], [5.0, 10.0]])
    np.testing.assert_array_equal(r["segment_labels"], [0, 1])
    assert r["duration"] == 10.0
    # 5 snippets of 2 s, centres 1,3,5,7,9: [0,4) -> 0,1; [5,10) -> 2,3,4.
    np.testing.assert_array_equal(r["snippet_labels"], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ds.split("validation").lengths, [5])

    held = datasets.load_dataset("activitynet12", tmp_path / "tfds", heldout_fraction=0.5)
    assert (held.metadata.train_split, held.metadata.val_split, held.metadata.test_split) == (
        "train",
        "val",
        "validation",
    )
    ids = lambda s: [held.split(s)[i]["video_id"] for i in range(len(held.split(s)))]  # noqa: E731
    assert (
        sorted(ids("train") + ids("val")) == ["AAAAAAAAAAA", "CCCCCCCCCCC"] and len(ids("val")) == 1
    )
    again = datasets.load_dataset("activitynet12", tmp_path / "tfds", heldout_fraction=0.5)
    assert [again.split("val")[0]["video_id"]] == ids("val")  # deterministic
    np.testing.assert_array_equal(held.split("val").lengths, [len(held.split("val")[0]["visual"])])


def test_heldout_indices_deterministic_and_sized():
    ids = [f"vid{i}" for i in range(1000)]
    keep, held = datasets.heldout_indices(ids, 0.1)
    assert len(held) == 100 and len(keep) == 900
    assert np.intersect1d(keep, held).size == 0
    keep2, held2 = datasets.heldout_indices(list(reversed(ids)), 0.1)
    assert sorted(ids[i] for i in held) == sorted(
        ids[::-1][i] for i in held2
    )  # by id, not position


def test_activitynet12_visual_folder_and_audio_object_array(tmp_path):
    src = write_wtalc_dataset(tmp_path / "anet", visual_folder=True, audio_object=True)
    _build("activitynet12", tmp_path / "tfds", manual_dir=tmp_path / "anet")
    ds = datasets.load_dataset("activitynet12", tmp_path / "tfds", heldout_fraction=0.0)
    r = ds.split("training")[1]
    assert r["video_id"] == "CCCCCCCCCCC"
    np.testing.assert_array_equal(r["visual"], src["visual"][2])


def test_thumos14_builder_keeps_detection_videos(tmp_path):
    videos = small_videos() + [
        dict(
            name="video_validation_9",
            id="-",
            subset="validation",
            duration=8.0,
            segments=[],
            labels=[],
        ),
    ]
    for v, name in zip(videos, ["video_validation_1", "video_test_2", "video_validation_3"]):
        v["name"] = name
        v["subset"] = "validation" if "validation" in name else "test"
    src = write_wtalc_dataset(tmp_path / "th", layout="thumos14", videos=videos)
    _build("thumos14", tmp_path / "tfds", manual_dir=tmp_path / "th")
    ds = datasets.load_dataset("thumos14", tmp_path / "tfds")
    meta = ds.metadata
    assert meta.tiou_thresholds == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert (meta.train_split, meta.val_split, meta.test_split) == ("train", "val", "test")
    validation = ds.split("validation")
    assert [validation[i]["video_id"] for i in range(len(validation))] == [
        "video_validation_1",
        "video_validation_3",
    ]
    assert [ds.split("test")[0]["video_id"]] == ["video_test_2"]
    assert len(ds.split("train")) + len(ds.split("val")) == 2
    np.testing.assert_array_equal(validation[1]["visual"], src["visual"][2])


@pytest.mark.parametrize(
    "corrupt, message",
    [
        ("nan", r"visual features of row 2 \(video CCCCCCCCCCC\) contain NaN/Inf"),
        ("zero_len", r"visual features of row 1 \(video BBBBBBBBBBB\) have zero length"),
        (
            "rank",
            r"visual features of row 0 \(video AAAAAAAAAAA\) have shape \[10, 8, 1\]; "
            r"expected \[T, D\]",
        ),
        ("dtype", r"visual features of row 0 \(video AAAAAAAAAAA\) have dtype <U"),
        ("dim", r"audio features of row 2 \(video CCCCCCCCCCC\) have 5 dims; expected 3"),
        ("rows", r"visual features have 2 rows; expected 3"),
        ("missing_audio", r"no audio features for row 1 \(video BBBBBBBBBBB\).*BBBBBBBBBBB.npy"),
        ("label", r"has label 'Curling', which is not in classlist.npy"),
        ("missing_ann", r"W-TALC segments.npy: file not found"),
    ],
)
def test_wtalc_bad_inputs(tmp_path, corrupt, message):
    folder = tmp_path / "anet"
    videos = small_videos()
    if corrupt == "label":
        videos[0]["labels"] = ["Curling"]
    src = write_wtalc_dataset(folder, videos=videos)
    visual = list(src["visual"])
    feature_file = folder / "ActivityNet1.2-I3D-JOINTFeatures.npy"
    if corrupt == "nan":
        visual[2][1, 3] = np.inf
    elif corrupt == "zero_len":
        visual[1] = np.zeros((0, 8), np.float32)
    elif corrupt == "rank":
        visual[0] = np.zeros((10, 8, 1), np.float32)
    elif corrupt == "dtype":
        visual[0] = np.array([["a"] * 8] * 3)
    elif corrupt == "dim":
        np.save(folder / "audio" / "CCCCCCCCCCC.npy", np.zeros((4, 5), np.float32))
    elif corrupt == "rows":
        visual = visual[:2]
    elif corrupt == "missing_audio":
        (folder / "audio" / "BBBBBBBBBBB.npy").unlink()
    elif corrupt == "missing_ann":
        (src["annotations"] / "segments.npy").unlink()
    save_py2_style_object_array(feature_file, visual)
    with pytest.raises(DataError, match=message):
        _build("activitynet12", tmp_path / "tfds", manual_dir=folder)
    _no_dataset_left(tmp_path / "tfds", "activitynet12")


def test_skip_missing_records_skipped_videos(tmp_path):
    folder = tmp_path / "anet"
    write_wtalc_dataset(folder)
    (folder / "audio" / "AAAAAAAAAAA.npy").unlink()
    _build(
        "activitynet12", tmp_path / "tfds", manual_dir=folder, builder_kwargs={"skip_missing": True}
    )
    ds = datasets.load_dataset("activitynet12", tmp_path / "tfds", heldout_fraction=0.0)
    assert len(ds.split("validation")) == 1
    assert [ds.split("training")[i]["video_id"] for i in range(len(ds.split("training")))] == [
        "CCCCCCCCCCC"
    ]
    builder = datasets.open_builder("activitynet12", tmp_path / "tfds")
    assert builder.info.metadata["skipped"] == {"training": ["AAAAAAAAAAA"]}
    # A split left empty is an error that says why, not TFDS's "No examples were yielded".
    (folder / "audio" / "BBBBBBBBBBB.npy").unlink()
    with pytest.raises(
        DataError, match=r"split 'validation' has no video \(1 skipped for missing features\)"
    ):
        _build(
            "activitynet12",
            tmp_path / "tfds2",
            manual_dir=folder,
            builder_kwargs={"skip_missing": True},
        )
    _no_dataset_left(tmp_path / "tfds2", "activitynet12")


def _real_wtalc_build(tmp_path, layout):
    """Real annotation folder; stand-in features: 3 snippets per video, value = row."""
    folder = REAL_ANET if layout == "activitynet12" else REAL_THUMOS
    n = len(np.load(folder / "subset.npy"))
    visual = [np.full((3, 2), i, np.float32) for i in range(n)]
    audio = [np.full((4, 1), i, np.float32) for i in range(n)]
    save_py2_style_object_array(tmp_path / "v.npy", visual)
    save_py2_style_object_array(tmp_path / "a.npy", audio)
    paths = {"annotations": folder, "visual": tmp_path / "v.npy", "audio": tmp_path / "a.npy"}
    _build(layout, tmp_path / "tfds", paths=paths)
    return datasets.load_dataset(layout, tmp_path / "tfds")


@needs_real_anet
def test_real_activitynet12_build(tmp_path):
    ds = _real_wtalc_build(tmp_path, "activitynet12")
    assert ds.metadata.num_classes == 100
    assert len(ds.split("training")) == 4819 and len(ds.split("validation")) == 2383
    assert len(ds.split("train")) == 4819 - 482 and len(ds.split("val")) == 482  # 10% held out
    r = ds.split("training")[0]
    assert r["video_id"] == "--0edUL8zmA" and r["duration"] == pytest.approx(92.18)
    assert ds.metadata.class_names[int(r["segment_labels"][0])] == "Dodgeball"
    lengths = ds.split("validation").lengths
    assert input_pipeline.num_eval_shapes(lengths) == 1  # all stand-ins have 3 snippets


@needs_real_thumos
def test_real_thumos14_build(tmp_path):
    ds = _real_wtalc_build(tmp_path, "thumos14")
    assert ds.metadata.num_classes == 20
    assert len(ds.split("validation")) == 200 and len(ds.split("test")) == 210
    test = ds.split("test")
    assert all(test[i]["labels"].sum() >= 1 for i in range(0, 210, 30))
    assert test[0]["video_id"].startswith("video_test_")


# ----------------------------------------------------------------------------- generic


def test_generic_builder(tmp_path):
    database, feats = write_generic(
        tmp_path / "mine", subsets=("training", "validation", "testing")
    )
    (tmp_path / "mine" / "classes.txt").write_text("run\njump\nswim\n")
    _build("generic", tmp_path / "tfds", builder_config="mine", manual_dir=tmp_path / "mine")
    ds = datasets.load_dataset("generic", tmp_path / "tfds", builder_config="mine")
    meta = ds.metadata
    assert meta.class_names == ("run", "jump", "swim")
    assert (meta.train_split, meta.val_split, meta.test_split) == (
        "training",
        "validation",
        "testing",
    )
    assert [len(ds.split(s)) for s in ("training", "validation", "testing")] == [2, 2, 2]
    r = ds.split("testing")[1]  # clip5: no annotation -> background-only video
    assert r["video_id"] == "clip5" and not r["labels"].any() and r["segments"].shape == (0, 2)
    np.testing.assert_array_equal(r["snippet_labels"], [3] * 11)
    r = ds.split("training")[1]  # clip3, "jump" on [1, 5) of 15 s, 9 snippets
    np.testing.assert_array_equal(r["visual"], feats["clip3"][0])
    np.testing.assert_array_equal(r["labels"], [0, 1, 0])
    assert r["duration"] == 15.0


def test_generic_builder_heldout_and_unknown_label(tmp_path):
    write_generic(tmp_path / "mine")
    _build("generic", tmp_path / "tfds", builder_config="two", manual_dir=tmp_path / "mine")
    ds = datasets.load_dataset("generic", tmp_path / "tfds", heldout_fraction=0.34)
    assert (ds.metadata.train_split, ds.metadata.val_split, ds.metadata.test_split) == (
        "train",
        "val",
        "validation",
    )
    assert len(ds.split("train")) == 2 and len(ds.split("val")) == 1
    (tmp_path / "mine" / "classes.txt").write_text("run\n")
    with pytest.raises(
        DataError, match=r"video 'clip1' has label 'jump', which is not in the class list"
    ):
        _build("generic", tmp_path / "tfds2", builder_config="bad", manual_dir=tmp_path / "mine")
    _no_dataset_left(tmp_path / "tfds2", "generic")


def test_loaded_split_feeds_the_pipeline(tmp_path):
    write_wtalc_dataset(tmp_path / "anet")
    _build("activitynet12", tmp_path / "tfds", manual_dir=tmp_path / "anet")
    ds = datasets.load_dataset("activitynet12", tmp_path / "tfds", heldout_fraction=0.0)
    source = ds.split("training")
    batch = next(input_pipeline.train_batches(source, batch_size=2, seed=0, num_snippets=4))
    assert batch["visual"].shape == (2, 4, 8) and batch["audio"].shape == (2, 4, 3)
    seen = [
        i for _, idx in input_pipeline.eval_batches(source, batch_size=2) for i in idx if i >= 0
    ]
    assert sorted(seen) == [0, 1]
