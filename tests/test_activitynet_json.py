"""avloc_jax.data.activitynet_json: the one home of the ActivityNet JSON layouts.

Property tests (hypothesis): ground truth and predictions survive build -> write -> read
unchanged; a ground truth scored against itself is mAP 1 (the writer's output is what the
evaluator reads); a corrupted entry is named (file, video, entry) and nothing is written.
"""

import ast
import dataclasses
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avloc_jax.data import activitynet_json as aj
from avloc_jax.data import annotations as ann
from avloc_jax.evaluation import detection_eval

# Values that float32 holds exactly, so that the strict reader's float32 segments compare
# equal to what was written.
_times = st.floats(0, 1e4, allow_nan=False, width=32)
_labels = st.text(min_size=1, max_size=12)
_ids = st.text(min_size=1, max_size=10)
_subsets = st.sampled_from(["training", "validation", "testing"])


@st.composite
def _video(draw, video_id):
    n = draw(st.integers(0, 4))
    pairs = [sorted(draw(st.tuples(_times, _times))) for _ in range(n)]
    # The duration may be shorter than a segment's end (THUMOS14 has such segments).
    duration = draw(st.floats(1e-3, 1e5, allow_nan=False, allow_infinity=False))
    return aj.GroundTruthVideo(
        video_id=video_id,
        subset=draw(_subsets),
        duration=duration,
        segments=np.asarray(pairs, np.float32).reshape(-1, 2),
        labels=tuple(draw(_labels) for _ in range(n)),
    )


@st.composite
def _ground_truth(draw, min_videos=1):
    ids = draw(st.lists(_ids, min_size=min_videos, max_size=6, unique=True))
    return [draw(_video(video_id)) for video_id in ids]


_detection = st.tuples(
    _labels,
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(-1e6, 1e6, allow_nan=False),
)
_per_video = st.dictionaries(_ids, st.lists(_detection, max_size=5), max_size=6)


def _same_videos(read, written):
    assert [v.video_id for v in read] == [v.video_id for v in written]
    for a, b in zip(read, written):
        assert (a.subset, a.duration, a.labels) == (b.subset, b.duration, b.labels)
        assert a.segments.dtype == np.float32
        np.testing.assert_array_equal(a.segments, b.segments)


@settings(max_examples=60, deadline=None)
@given(_ground_truth())
def test_ground_truth_round_trip_through_a_file(videos):
    payload = aj.ground_truth_payload(videos, version="v")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gt.json"
        aj.write_ground_truth(path, payload)
        assert sorted(p.name for p in Path(folder).iterdir()) == ["gt.json"]  # no temp left
        assert aj.read_ground_truth(path) == payload
        _same_videos(aj.read_ground_truth_videos(path), videos)
    # In memory too, and the text is the compact one.
    _same_videos(aj.ground_truth_videos(json.loads(aj.dumps_ground_truth(payload))), videos)
    assert "\n" not in aj.dumps_ground_truth(payload)


@settings(max_examples=60, deadline=None)
@given(_per_video)
def test_predictions_round_trip_through_a_file(per_video):
    payload = aj.predictions_payload(per_video, version="v", external_data={"used": True})
    assert payload["version"] == "v" and payload["external_data"] == {"used": True}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pred.json"
        aj.write_predictions(path, payload)
        assert aj.read_predictions(path) == payload
        read = aj.predictions_by_video(aj.load_json(path))
    assert read == {vid: [aj.Prediction(*d) for d in dets] for vid, dets in per_video.items()}
    assert aj.count_predictions(payload) == (sum(map(len, per_video.values())), len(per_video))


def test_predictions_payload_defaults_to_the_weakly_supervised_claim():
    payload = aj.predictions_payload({"v": [("A", 1, 0, 2)]})
    assert payload == {
        "version": aj.DEFAULT_VERSION,
        "results": {"v": [{"label": "A", "score": 1.0, "segment": [0.0, 2.0]}]},
        "external_data": aj.WEAKLY_SUPERVISED,
    }
    assert payload["external_data"] is not aj.WEAKLY_SUPERVISED  # a copy: callers may edit it


@settings(max_examples=40, deadline=None)
@given(_ground_truth())
def test_ground_truth_scored_against_itself_is_map_one(videos):
    # Whatever the writer writes, the evaluator reads; its own segments score AP 1 for
    # every class (zero-length segments aside: their tIoU is 0 by definition).
    videos = [
        dataclasses.replace(
            v,
            segments=v.segments[v.segments[:, 1] > v.segments[:, 0]],
            labels=tuple(np.asarray(v.labels, object)[v.segments[:, 1] > v.segments[:, 0]]),
        )
        for v in videos
    ]
    if not any(len(v.labels) for v in videos):
        return
    ground_truth = json.loads(aj.dumps_ground_truth(aj.ground_truth_payload(videos)))
    own = {
        v.video_id: [(lab, 1.0, s, e) for lab, (s, e) in zip(v.labels, v.segments.tolist())]
        for v in videos
    }
    predictions = json.loads(aj.dumps_predictions(aj.predictions_payload(own)))
    result = detection_eval.evaluate_detections(ground_truth, predictions, [0.5, 0.95])
    assert result["mAP"] == [1.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(_per_video.filter(lambda p: any(p.values())), st.data())
def test_a_corrupted_prediction_is_named_and_nothing_is_written(per_video, data):
    payload = aj.predictions_payload(per_video)
    video_id = data.draw(st.sampled_from([v for v, dets in per_video.items() if dets]))
    entry = data.draw(st.integers(0, len(per_video[video_id]) - 1))
    key = data.draw(st.sampled_from(aj.PREDICTION_KEYS))
    del payload["results"][video_id][entry][key]
    # The first malformed entry in file order is the one named: here the only one.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pred.json"
        with pytest.raises(aj.FormatError) as info:
            aj.write_predictions(path, payload)
        assert list(Path(folder).iterdir()) == []
    assert info.value.source == f"predictions file {str(path)!r}"
    assert info.value.where == f"video {video_id!r}, entry {entry} (0-based)"
    assert info.value.problem.startswith(f"no {key!r} key")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "payload, message",
    [
        ([1, 2], "expected the ActivityNet layout {'database': {video_id: {...}}}, got [1, 2]"),
        ({"videos": {}}, "no 'database' key (expected the ActivityNet GT JSON layout)"),
        ({"database": {}}, "the database is empty"),
        ({"database": {"v": {"subset": "t"}}}, "video 'v': expected keys 'subset', 'duration'"),
        ({"database": {"v": {"subset": "t", "duration": "5"}}}, "video 'v': duration must be a"),
        ({"database": {"v": {"subset": "t", "duration": math.inf}}}, "video 'v': duration inf"),
        (
            {"database": {"v": {"subset": "t", "duration": 5, "annotations": {"a": 1}}}},
            "video 'v': expected a list; got {'a': 1}",
        ),
        (
            {"database": {"v": {"subset": "t", "duration": 5, "annotations": [{"label": "A"}]}}},
            "video 'v', annotation 0 (0-based): no 'segment' key (keys present: 'label')",
        ),
        (
            {
                "database": {
                    "v": {
                        "subset": "t",
                        "duration": 5,
                        "annotations": [{"label": "A", "segment": [3, 2]}],
                    }
                }
            },
            "video 'v', annotation 0 (0-based): expected 0 <= start <= end, got [3.0, 2.0]",
        ),
    ],
)
def test_strict_ground_truth_reader_names_file_video_and_annotation(tmp_path, payload, message):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ann.DataError) as info:
        aj.read_ground_truth_videos(path)
    assert isinstance(info.value, aj.FormatError)
    assert str(info.value).startswith(f"ground-truth file {str(path)!r}")
    assert message in str(info.value)


def test_ground_truth_writer_refuses_a_bad_payload_before_writing(tmp_path):
    path = tmp_path / "gt.json"
    bad = {"database": {"v": {"subset": "t", "annotations": [{"label": ["A"], "segment": [0, 1]}]}}}
    with pytest.raises(aj.FormatError) as info:
        aj.write_ground_truth(path, bad)
    assert str(info.value) == (
        f"ground-truth file {str(path)!r}, video 'v', annotation 0 (0-based): "
        "'label' must be a string; got ['A']"
    )
    assert list(tmp_path.iterdir()) == []


def test_subset_counts_in_order_of_first_appearance():
    videos = [
        aj.GroundTruthVideo("a", "validation", 5.0, np.zeros((2, 2)), ("x", "y")),
        aj.GroundTruthVideo("b", "training", 5.0, np.zeros((0, 2)), ()),
        aj.GroundTruthVideo("c", "validation", 5.0, np.zeros((1, 2)), ("x",)),
    ]
    counts = aj.subset_counts(aj.ground_truth_payload(videos))
    assert list(counts.items()) == [("validation", (2, 3)), ("training", (1, 0))]


def test_ground_truth_payload_refuses_segments_and_labels_of_different_lengths():
    video = aj.GroundTruthVideo("a", "t", 5.0, np.zeros((2, 2)), ("x",))
    with pytest.raises(ValueError, match="video 'a': 2 segments but 1 label$"):
        aj.ground_truth_payload([video])


_LAYOUT_KEYS = {"database", "results", "segment", "external_data"}


def _layout_keys_used(source: str) -> list[tuple[int, str]]:
    """(line, key) of each layout key used as a subscript or a dict key (not in prose)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        keys = [node.slice] if isinstance(node, ast.Subscript) else []
        keys += [k for k in node.keys if k is not None] if isinstance(node, ast.Dict) else []
        found += [
            (k.lineno, k.value)
            for k in keys
            if isinstance(k, ast.Constant) and k.value in _LAYOUT_KEYS
        ]
    return found


def test_no_other_module_spells_the_layout():
    # The check itself: it sees a subscript and a dict key, and not a docstring.
    sample = '"""{"results": ...}"""\nx = payload["results"]\ny = {"segment": [0, 1]}\n'
    assert _layout_keys_used(sample) == [(2, "results"), (3, "segment")]
    package = Path(aj.__file__).resolve().parents[1]
    found = [
        f"{path.relative_to(package)}:{line}: {key}"
        for path in sorted(package.rglob("*.py"))
        if path != Path(aj.__file__).resolve()
        for line, key in _layout_keys_used(path.read_text(encoding="utf-8"))
    ]
    assert found == []


# ----------------------------------------------------------------------------- error lines
# Each bad input gives one line naming the file (or the kind of payload), the video, the
# entry and what was expected; these pin the whole line, role included.


def _gt_file(path):
    return f"ground-truth file {str(path)!r}"


def _pred_file(path):
    return f"predictions file {str(path)!r}"


@pytest.mark.parametrize("reader, role", [("gt", _gt_file), ("pred", _pred_file)])
def test_file_readers_name_the_file_and_its_role(tmp_path, reader, role):
    read = aj.read_ground_truth if reader == "gt" else aj.read_predictions
    key = "database" if reader == "gt" else "results"
    layout = "GT JSON" if reader == "gt" else "prediction JSON"
    path = tmp_path / "x.json"
    path.write_text("[1]")
    with pytest.raises(aj.DataError) as info:
        read(path)
    assert str(info.value) == f"{role(path)} does not hold a JSON object"
    path.write_text('{"other": 1}')
    with pytest.raises(aj.FormatError) as info:
        read(path)
    assert str(info.value) == (
        f"{role(path)}: no {key!r} key (expected the ActivityNet {layout} layout)"
    )


def test_strict_reader_names_a_missing_and_an_unreadable_file(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(ann.DataError) as info:
        aj.read_ground_truth_videos(missing)
    assert str(info.value) == f"ground-truth JSON: file not found: {missing}"
    broken = tmp_path / "gt.json"
    broken.write_text("{")
    with pytest.raises(ann.DataError) as info:
        aj.read_ground_truth_videos(broken)
    assert str(info.value).startswith(f"{_gt_file(broken)} is not valid JSON: ")
    assert "\n" not in str(info.value)


def _gt(**entry):
    return {"database": {"v": {"subset": "training", "duration": 5.0, **entry}}}


@pytest.mark.parametrize(
    "payload, where, problem",
    [
        ({"videos": {}}, "", "no 'database' key (expected the ActivityNet GT JSON layout)"),
        ({"database": [1]}, "", "'database' must map video ids to entries"),
        (
            {"database": {"v": 3}},
            "video 'v'",
            "expected an object with 'subset' and 'annotations'; got 3",
        ),
        (
            _gt(annotations=[{"label": "A", "segment": [0, 1]}, {"label": "B"}]),
            "video 'v', annotation 1 (0-based)",
            "no 'segment' key (keys present: 'label')",
        ),
        (
            _gt(annotations=[{"label": "A", "segment": [0, 1]}, {"label": {}, "segment": [0, 1]}]),
            "video 'v', annotation 1 (0-based)",
            "'label' must be a string; got {}",
        ),
    ],
)
def test_ground_truth_checks_name_the_source_video_and_annotation(payload, where, problem):
    # The same line from every entry point, with the source each was given.
    for check in (aj.check_ground_truth, aj.subset_counts):
        with pytest.raises(aj.FormatError) as info:
            check(payload, "gt 'g.json'")
        assert (info.value.source, info.value.where, info.value.problem) == (
            "gt 'g.json'",
            where,
            problem,
        )
        assert str(info.value) == (
            f"gt 'g.json', {where}: {problem}" if where else f"gt 'g.json': {problem}"
        )


@pytest.mark.parametrize(
    "payload, problem",
    [
        ({"res": {}}, "no 'results' key (expected the ActivityNet prediction JSON layout)"),
        ({"results": [1]}, "'results' must map video ids to lists of detections; got [1]"),
    ],
)
def test_prediction_readers_name_the_source(payload, problem):
    for read in (aj.check_predictions, aj.predictions_by_video, aj.count_predictions):
        with pytest.raises(aj.FormatError) as info:
            read(payload, "p 'p.json'")
        assert str(info.value) == f"p 'p.json': {problem}"
        assert info.value.where == ""


@settings(max_examples=40, deadline=None)
@given(_per_video.filter(lambda p: any(p.values())), st.data())
def test_an_unhashable_prediction_label_is_named(per_video, data):
    # Labels are checked in bulk (a set of them); an unhashable one is then found entry by
    # entry, and the line names the file, the video and the entry.
    payload = aj.predictions_payload(per_video)
    video_id = data.draw(st.sampled_from([v for v, dets in per_video.items() if dets]))
    entry = data.draw(st.integers(0, len(per_video[video_id]) - 1))
    payload["results"][video_id][entry]["label"] = ["A"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pred.json"
        with pytest.raises(aj.FormatError) as info:
            aj.write_predictions(path, payload)
        assert list(Path(folder).iterdir()) == []
    assert str(info.value) == (
        f"{_pred_file(path)}, video {video_id!r}, entry {entry} (0-based): "
        "'label' must be a string; got ['A']"
    )


@settings(max_examples=40, deadline=None)
@given(_ground_truth(), st.data())
def test_a_corrupted_annotation_is_named_and_nothing_is_written(videos, data):
    payload = aj.ground_truth_payload(videos)
    annotated = [v.video_id for v in videos if v.labels]
    if not annotated:
        payload["database"][videos[0].video_id]["annotations"] = [{"label": "A"}]
        video_id, k, key = videos[0].video_id, 0, "segment"
    else:
        video_id = data.draw(st.sampled_from(annotated))
        k = data.draw(st.integers(0, len(payload["database"][video_id]["annotations"]) - 1))
        key = data.draw(st.sampled_from(aj.ANNOTATION_KEYS))
        del payload["database"][video_id]["annotations"][k][key]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gt.json"
        with pytest.raises(aj.FormatError) as info:
            aj.write_ground_truth(path, payload)
        assert list(Path(folder).iterdir()) == []
    assert info.value.source == _gt_file(path)
    assert info.value.where == f"video {video_id!r}, annotation {k} (0-based)"
    assert info.value.problem.startswith(f"no {key!r} key (keys present: ")


@settings(max_examples=30, deadline=None)
@given(
    st.one_of(
        st.floats(max_value=0.0),  # zero (a zero-length video), negative, -inf, nan
        st.just(math.inf),
        st.integers(max_value=0),  # also beyond int64 and the float range
    )
)
def test_strict_reader_refuses_a_duration_not_above_zero(duration):
    with pytest.raises(aj.FormatError) as info:
        aj.ground_truth_videos(_gt(duration=duration), "gt")
    assert str(info.value) == (
        f"gt, video 'v': duration {duration}: expected a finite length > 0 seconds "
        "(zero-length video)"
    )


def test_strict_reader_huge_integers_give_one_error_line():
    """Integers beyond int64 and the float range are valid JSON: a duration of 1e20 s is
    a (long) duration; a bound of 10**400 is infinite and refused in the one line."""
    (video,) = aj.ground_truth_videos(
        {"database": {"v": {"subset": "t", "duration": 10**20}}}, "gt"
    )
    assert video.duration == 1e20
    entry = {"duration": 5, "annotations": [{"label": "A", "segment": [0, 10**400]}]}
    with pytest.raises(aj.FormatError) as info:
        aj.ground_truth_videos({"database": {"v": {"subset": "t", **entry}}}, "gt")
    assert str(info.value) == (
        "gt, video 'v', annotation 0 (0-based): expected 0 <= start <= end, got [0.0, inf]"
    )


@pytest.mark.parametrize(
    "payload, where, problem",
    [
        ([1], "", "expected the ActivityNet layout {'database': {video_id: {...}}}, got [1]"),
        ({"database": {}}, "", "the database is empty"),
        (
            {"database": {"v": {"duration": 5}}},  # no subset
            "video 'v'",
            "expected keys 'subset', 'duration' and 'annotations'",
        ),
        (
            {"database": {"v": {"subset": "t"}}},  # no duration
            "video 'v'",
            "expected keys 'subset', 'duration' and 'annotations'",
        ),
        (_gt(duration="5"), "video 'v'", "duration must be a number, got '5'"),
        (_gt(duration=True), "video 'v'", "duration must be a number, got True"),
    ],
)
def test_strict_reader_whole_error_line(payload, where, problem):
    with pytest.raises(aj.FormatError) as info:
        aj.ground_truth_videos(payload, "gt")
    assert (info.value.source, info.value.where, info.value.problem) == ("gt", where, problem)
    assert str(info.value) == (f"gt, {where}: {problem}" if where else f"gt: {problem}")


def test_written_files_have_the_documented_keys_and_lines():
    video = aj.GroundTruthVideo("v", "training", 5.0, np.asarray([[0.0, 1.0]]), ("A",))
    assert json.loads(aj.dumps_ground_truth(aj.ground_truth_payload([video], "v1"))) == {
        "version": "v1",
        "database": {
            "v": {
                "subset": "training",
                "duration": 5.0,
                "annotations": [{"label": "A", "segment": [0.0, 1.0]}],
            }
        },
    }
    text = aj.dumps_predictions(aj.predictions_payload({"v": [("A", 0.5, 0.0, 1.0)]}))
    lines = text.splitlines()
    # One key a line: every "key": of the file starts its own line.
    assert text.count('":') == 9  # version results v label score segment external_data used details
    assert all(line.count('":') <= 1 for line in lines)
