"""Annotation readers (AVE, W-TALC folders, GT JSON) and `avloc export-gt`, on small
files in the exact formats and, where present, on the real files in /work/shared/data."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from avloc_jax.cli import export_gt
from avloc_jax.data import annotations as ann
from avloc_jax.data.annotations import DataError
from avloc_jax.evaluation import detection_eval

SHARED = Path("/work/shared/data")
REAL_AVE = SHARED / "ave"
REAL_ANET = SHARED / "activitynet12"
REAL_THUMOS = SHARED / "thumos14"
needs_real_ave = pytest.mark.skipif(
    not (REAL_AVE / "Annotations.txt").is_file(), reason="real AVE files absent"
)
needs_real_anet = pytest.mark.skipif(
    not (REAL_ANET / "subset.npy").is_file(), reason="real ActivityNet1.2 folder absent"
)
needs_real_thumos = pytest.mark.skipif(
    not (REAL_THUMOS / "subset.npy").is_file(), reason="real THUMOS14 folder absent"
)


# ----------------------------------------------------------------------------- AVE


def write_annotations(path, rows, header=True):
    lines = ["Category&VideoID&Quality&StartTime&EndTime"] if header else []
    lines += [f"{c}&{v}&good&{s}&{e}" for c, v, s, e in rows]
    Path(path).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("header", [True, False])
def test_ave_annotations_first_appearance_order_and_snippets(tmp_path, header):
    rows = [
        ("Bark", "a", 2, 5),
        ("Church bell", "b", 0, 10),
        ("Bark", "c", 9, 10),
        ("Banjo", "d", 3, 3),
    ]
    write_annotations(tmp_path / "A.txt", rows, header)
    a = ann.read_ave_annotations(tmp_path / "A.txt")
    assert a.class_names == ("Bark", "Church bell", "Banjo")
    assert a.video_ids == ("a", "b", "c", "d")
    np.testing.assert_array_equal(a.classes, [0, 1, 0, 2])
    labels = ann.ave_snippet_labels(a)
    bg = 3
    np.testing.assert_array_equal(labels[0], [bg, bg, 0, 0, 0, bg, bg, bg, bg, bg])
    np.testing.assert_array_equal(labels[1], [1] * 10)
    np.testing.assert_array_equal(labels[2], [bg] * 9 + [0])
    np.testing.assert_array_equal(labels[3], [bg] * 10)  # Start == End: empty event
    np.testing.assert_array_equal(ann.ave_video_labels(a), np.eye(3)[[0, 1, 0, 2]])
    segments, classes = ann.segments_from_snippet_labels(labels[0], bg)
    np.testing.assert_array_equal(segments, [[2, 5]])
    np.testing.assert_array_equal(classes, [0])


@pytest.mark.parametrize(
    "line, message",
    [
        ("Bark&a&good&2", "expected 5"),
        ("Bark&a&good&6&4", "Start <= End"),
        ("Bark&a&good&0&11", "End <= 10"),
        ("Bark&a&good&x&4", "integers"),
    ],
)
def test_ave_annotations_bad_lines_name_the_line(tmp_path, line, message):
    (tmp_path / "A.txt").write_text("Bark&ok&good&0&1\n" + line + "\n")
    with pytest.raises(DataError, match=message) as err:
        ann.read_ave_annotations(tmp_path / "A.txt")
    assert "line 2" in str(err.value) and "A.txt" in str(err.value)


def test_ave_missing_file_and_order_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        ann.read_ave_annotations(tmp_path / "nope.txt")
    with h5py.File(tmp_path / "o.h5", "w") as h:
        h["order"] = np.array([0, 5])
    with pytest.raises(DataError, match="out of range"):
        ann.read_ave_order(tmp_path / "o.h5", num_videos=3)
    with h5py.File(tmp_path / "k.h5", "w") as h:
        h["wrong"] = np.array([0])
    with pytest.raises(DataError, match="no dataset 'order'"):
        ann.read_ave_order(tmp_path / "k.h5", num_videos=3)


@needs_real_ave
def test_real_ave_annotations_match_the_label_files():
    a = ann.read_ave_annotations(REAL_AVE / "Annotations.txt")
    assert len(a) == 4143 and a.num_classes == 28
    assert a.class_names[:3] == ("Church bell", "Male speech, man speaking", "Bark")
    assert a.class_names[-1] == "Mandolin"
    closs = ann.read_h5_array(REAL_AVE / "labels_closs.h5")  # [4143, 10] event mask
    np.testing.assert_array_equal(ann.ave_snippet_labels(a) != 28, closs.astype(bool))
    mil = ann.read_h5_array(REAL_AVE / "mil_labels.h5")  # [4143, 29] video level
    np.testing.assert_array_equal(ann.ave_video_labels(a), mil[:, :28])
    orders = [
        ann.read_ave_order(REAL_AVE / f"{s}_order.h5", len(a)) for s in ("train", "val", "test")
    ]
    assert [len(o) for o in orders] == [3339, 402, 402]
    assert len(np.unique(np.concatenate(orders))) == 4143


# ----------------------------------------------------------------------------- W-TALC


def save_object(path, items):
    """An object array of per-video lists/arrays, as the W-TALC files store them."""
    arr = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        arr[i] = x
    np.save(path, arr, allow_pickle=True)


def write_wtalc_folder(
    folder, *, classes, videos, duration_2d=False, urls=True, classlist_name="classlist.npy"
):
    """videos: list of dicts name, subset, duration, segments [[s, e]...], labels [...]."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(
        folder / classlist_name, np.array([c.encode() for c in classes])
    )  # bytes, like the real files
    np.save(folder / "subset.npy", np.array([v["subset"].encode() for v in videos]))
    np.save(folder / "videoname.npy", np.array([v["name"].encode() for v in videos]))
    if urls:
        np.save(
            folder / "url.npy",
            np.array([f"https://www.youtube.com/watch?v={v['id']}".encode() for v in videos]),
        )
    durations = np.array([v["duration"] for v in videos], np.float64)
    np.save(folder / "duration.npy", durations[:, None] if duration_2d else durations)
    save_object(folder / "segments.npy", [list(map(list, v["segments"])) for v in videos])
    # labels.npy as bytes lists, labels_all.npy as str lists (as in the real ActivityNet1.2 folder)
    save_object(folder / "labels.npy", [[x.encode() for x in v["labels"]] for v in videos])
    save_object(folder / "labels_all.npy", [sorted(set(v["labels"])) for v in videos])


def small_videos():
    return [
        dict(
            name="video_1",
            id="AAAAAAAAAAA",
            subset="training",
            duration=20.0,
            segments=[[2.0, 8.0]],
            labels=["Ballet"],
        ),
        dict(
            name="video_2",
            id="BBBBBBBBBBB",
            subset="validation",
            duration=10.0,
            segments=[[0.0, 4.0], [5.0, 10.0]],
            labels=["Archery", "Ballet"],
        ),
        dict(
            name="video_3",
            id="CCCCCCCCCCC",
            subset="training",
            duration=30.0,
            segments=[[10.0, 12.5]],
            labels=["Archery"],
        ),
    ]


def test_wtalc_folder_reader_normalises_strings_and_ids(tmp_path):
    write_wtalc_folder(
        tmp_path / "ann", classes=["Archery", "Ballet"], videos=small_videos(), duration_2d=True
    )
    a = ann.read_wtalc_annotations(tmp_path / "ann")
    assert a.class_names == ("Archery", "Ballet")
    assert a.video_ids == ("AAAAAAAAAAA", "BBBBBBBBBBB", "CCCCCCCCCCC")  # from url.npy, after 'v='
    assert a.video_names[0] == "video_1"
    np.testing.assert_array_equal(a.durations, [20.0, 10.0, 30.0])
    np.testing.assert_array_equal(a.rows("training"), [0, 2])
    np.testing.assert_array_equal(a.segment_classes(1), [0, 1])
    np.testing.assert_array_equal(a.video_labels(1), [1.0, 1.0])
    assert a.labels_all[1] == ("Archery", "Ballet")
    by_name = ann.read_wtalc_annotations(tmp_path / "ann", id_source="videoname")
    assert by_name.video_ids[0] == "video_1"


def test_wtalc_bad_inputs(tmp_path):
    videos = small_videos()
    videos[2]["labels"] = ["Curling"]
    write_wtalc_folder(tmp_path / "a", classes=["Archery", "Ballet"], videos=videos)
    with pytest.raises(
        DataError,
        match=r"row 2 \(video CCCCCCCCCCC\) has label 'Curling', which is not in classlist",
    ):
        ann.read_wtalc_annotations(tmp_path / "a")

    videos = small_videos()
    videos[1]["duration"] = 0.0
    write_wtalc_folder(tmp_path / "b", classes=["Archery", "Ballet"], videos=videos)
    with pytest.raises(DataError, match=r"row 1 \(video BBBBBBBBBBB\).*zero-length"):
        ann.read_wtalc_annotations(tmp_path / "b")

    write_wtalc_folder(tmp_path / "c", classes=["Archery", "Ballet"], videos=small_videos())
    np.save(tmp_path / "c" / "videoname.npy", np.array([b"video_1", b"video_2"]))
    with pytest.raises(DataError, match=r"videoname.npy: expected 3 rows"):
        ann.read_wtalc_annotations(tmp_path / "c")

    write_wtalc_folder(tmp_path / "d", classes=["Archery", "Ballet"], videos=small_videos())
    (tmp_path / "d" / "duration.npy").unlink()
    with pytest.raises(DataError, match=r"file not found: .*duration.npy"):
        ann.read_wtalc_annotations(tmp_path / "d")

    videos = small_videos()
    videos[0]["labels"] = ["Ballet", "Ballet"]
    write_wtalc_folder(tmp_path / "e", classes=["Archery", "Ballet"], videos=videos)
    with pytest.raises(DataError, match="1 segments in segments.npy but 2 labels"):
        ann.read_wtalc_annotations(tmp_path / "e")

    videos = small_videos()
    videos[0]["segments"] = [[8.0, 2.0]]
    write_wtalc_folder(tmp_path / "f", classes=["Archery", "Ballet"], videos=videos)
    with pytest.raises(DataError, match="0 <= start <= end"):
        ann.read_wtalc_annotations(tmp_path / "f")


def test_snippet_labels_from_segments_centre_rule():
    # 10 snippets over 20 s: snippet t covers [2t, 2t+2), centre 2t+1.
    labels = ann.snippet_labels_from_segments(
        np.array([[2.0, 8.0], [6.5, 12.0]]),
        np.array([1, 0]),
        duration=20.0,
        num_snippets=10,
        background=5,
    )
    # centres 1,3,5,7,9,11,...: [2,8) covers 3,5,7; [6.5,12) covers 7,9,11 but the first
    # segment wins at 7.
    np.testing.assert_array_equal(labels, [5, 1, 1, 1, 0, 0, 5, 5, 5, 5])


@needs_real_anet
def test_real_activitynet12_folder():
    a = ann.read_layout(REAL_ANET, "activitynet12")
    assert len(a) == 7202 and len(a.class_names) == 100
    assert len(a.rows("training")) == 4819 and len(a.rows("validation")) == 2383
    assert a.video_ids[0] == "--0edUL8zmA" and all(len(v) == 11 for v in a.video_ids)
    assert len(set(a.video_ids)) == 7202
    # labels.npy (bytes) and labels_all.npy (str) name the same classes for every video.
    assert all(set(lb) == set(la) for lb, la in zip(a.segment_labels, a.labels_all))


@needs_real_thumos
def test_real_thumos14_folder():
    a = ann.read_layout(REAL_THUMOS, "thumos14")
    layout = ann.LAYOUTS["thumos14"]
    assert a.class_names == ann.thumos14_detection_classes(REAL_THUMOS) and len(a.class_names) == 20
    assert a.class_names[0] == "BaseballPitch"
    assert a.durations.shape == (2584,)  # duration.npy is [2584, 1]
    assert len(ann.layout_rows(a, layout, "validation")) == 200
    assert len(ann.layout_rows(a, layout, "test")) == 210
    assert a.video_ids[0] == "video_validation_0000001"


# ----------------------------------------------------------------------------- GT JSON


def _check_gt(gt, class_names):
    assert set(gt) >= {"version", "database"}
    for vid, entry in gt["database"].items():
        assert isinstance(vid, str) and entry["duration"] > 0
        for a in entry["annotations"]:
            assert a["label"] in class_names
            s, e = a["segment"]
            assert 0 <= s <= e


@needs_real_anet
def test_export_gt_real_activitynet12(tmp_path, capsys):
    out = tmp_path / "anet_gt.json"
    assert (
        export_gt.main(
            ["--annotations", str(REAL_ANET), "--layout", "activitynet12", "--out", str(out)]
        )
        == 0
    )
    assert "training: 4819 videos" in capsys.readouterr().out
    gt = json.loads(out.read_text())
    subsets = [v["subset"] for v in gt["database"].values()]
    assert subsets.count("training") == 4819 and subsets.count("validation") == 2383
    classes = {a["label"] for v in gt["database"].values() for a in v["annotations"]}
    assert len(classes) == 100
    _check_gt(gt, classes)
    assert gt["database"]["--0edUL8zmA"]["annotations"][0]["label"] == "Dodgeball"


@needs_real_thumos
def test_export_gt_real_thumos14_scores_perfect_predictions(tmp_path):
    out = tmp_path / "thumos_gt.json"
    rc = export_gt.main(
        [
            "--annotations",
            str(REAL_THUMOS),
            "--layout",
            "thumos14",
            "--out",
            str(out),
            "--subset",
            "test",
        ]
    )
    assert rc == 0
    gt = json.loads(out.read_text())
    assert len(gt["database"]) == 210 and {v["subset"] for v in gt["database"].values()} == {"test"}
    classes = {a["label"] for v in gt["database"].values() for a in v["annotations"]}
    assert len(classes) == 20
    _check_gt(gt, classes)
    # The GT is valid input to the project's official-protocol evaluator: the GT itself
    # as predictions scores mAP 1 at every THUMOS threshold.
    predictions = {
        "results": {
            vid: [
                {"label": a["label"], "score": 1.0, "segment": a["segment"]}
                for a in v["annotations"]
            ]
            for vid, v in gt["database"].items()
        }
    }
    result = detection_eval.evaluate_detections(
        gt, predictions, ann.LAYOUTS["thumos14"].tiou_thresholds, subset="test"
    )
    assert result["average_mAP"] == pytest.approx(1.0)


def test_export_gt_bad_folder_exit_code(tmp_path, capsys):
    rc = export_gt.main(
        [
            "--annotations",
            str(tmp_path / "none"),
            "--layout",
            "thumos14",
            "--out",
            str(tmp_path / "g.json"),
        ]
    )
    assert rc == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()


def test_ground_truth_json_reader_errors(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(
        json.dumps({"database": {"v1": {"subset": "training", "duration": 0, "annotations": []}}})
    )
    with pytest.raises(DataError, match=r"video 'v1'.*zero-length"):
        ann.read_ground_truth_json(path)
    path.write_text(
        json.dumps(
            {"database": {"v1": {"subset": "t", "duration": 5, "annotations": [{"label": "x"}]}}}
        )
    )
    with pytest.raises(DataError, match="annotation 0"):
        ann.read_ground_truth_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="ActivityNet layout"):
        ann.read_ground_truth_json(path)
