"""`avloc extract-features` in shards (--shard I/N, then --merge DIR), as a SLURM array
runs it, and resuming: in-process, with short PyAV clips and the stand-in networks of
media_helpers. tests/test_extract_processes.py runs real processes (jax.distributed, and
a run killed with SIGKILL)."""

from __future__ import annotations

import json

import media_helpers as mh
import numpy as np
import pytest

from avloc_jax.cli import main as cli
from avloc_jax.extraction import media, pipeline, shards

# Seconds of the seven good clips: distinct, so that the shard assignment is known.
LENGTHS = {"v0": 0.7, "v1": 1.0, "v2": 1.3, "v3": 1.6, "v4": 1.9, "v5": 2.2, "v6": 2.5}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A folder of eight videos: seven good clips and a corrupt file (broken.mp4)."""
    folder = tmp_path_factory.mktemp("videos")
    for name, seconds in LENGTHS.items():
        mh.write_clip(folder / f"{name}.mp4", seconds=seconds, size=(32, 32))
    (folder / "broken.mp4").write_bytes(b"\x00" * 4096)
    return folder


@pytest.fixture(autouse=True)
def standin(monkeypatch):
    monkeypatch.setattr(pipeline, "load_extractor", lambda *a, **k: mh.standin_extractor(2))


run = mh.run_extract_features
states = mh.video_states


def arrays(out) -> dict[str, bytes]:
    """Every feature file under `out`, as raw bytes (bitwise comparison)."""
    return {
        f"{path.parent.name}/{path.name}": path.read_bytes() for path in sorted(out.glob("*/*.npy"))
    }


@pytest.fixture(scope="module")
def one_run(videos, tmp_path_factory):
    """The whole folder extracted by one process (no shards)."""
    out = tmp_path_factory.mktemp("one") / "features"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "load_extractor", lambda *a, **k: mh.standin_extractor(2))
        code = cli.main(["extract-features", str(videos), "--out", str(out), "--weights", "."])
    return code, out


def test_eight_videos_one_corrupt_give_seven_pairs_one_failure_and_exit_3(one_run, videos):
    code, out = one_run
    assert code == 3
    assert sorted(p.name for p in (out / "visual").iterdir()) == [f"{v}.npy" for v in LENGTHS]
    assert sorted(p.name for p in (out / "audio").iterdir()) == [f"{v}.npy" for v in LENGTHS]
    failures = json.loads((out / "failures.json").read_text())["failures"]
    assert [(f["id"], f["path"]) for f in failures] == [("broken", str(videos / "broken.mp4"))]
    assert "corrupt" in failures[0]["reason"]
    assert list(json.loads((out / "manifest.json").read_text())["videos"]) == list(LENGTHS)


def test_assignment_is_largest_first_onto_the_least_loaded_shard():
    # 10 -> 0; 9 -> 1; 8 -> 1 (9 < 10); 3 -> 0 (10 < 17); 3 -> 0 (13 < 17); 2 -> 0
    # (16 < 17); unknown (0) -> 1 (17 < 18).
    assert shards.assign([10, 9, 8, 3, 3, 2, None], 2) == [0, 1, 1, 0, 0, 0, 1]
    assert shards.assign([1, 1, 1, 1], 3) == [0, 1, 2, 0]  # ties: input order, lower shard
    assert shards.assign([3, 5, 4], 1) == [0, 0, 0]
    assert shards.parse_shard(" 1/4") == shards.Shard(1, 4) and str(shards.Shard(1, 4)) == "1/4"
    for bad in ("4/4", "1/0", "-1/2", "1", "a/b"):
        with pytest.raises(ValueError, match="expected I/N with 0 <= I < N"):
            shards.parse_shard(bad)


def test_plan_reads_durations_from_the_headers(videos):
    ids = ["broken", *LENGTHS]
    plan = shards.plan(ids, [videos / f"{v}.mp4" for v in ids], shards.Shard(1, 2))
    durations = [None, *LENGTHS.values()]
    assert plan.assignment == tuple(shards.assign(durations, 2))
    assert [ids[p] for p in plan.positions] == ["v0", "v1", "v4", "v5"]
    assert media.header_duration(videos / "v6.mp4") == pytest.approx(2.5, abs=0.05)
    assert media.header_duration(videos / "broken.mp4") is None


def test_shards_then_merge_equal_one_run(one_run, videos, tmp_path, capsys):
    _, single = one_run
    out = tmp_path / "features"
    code, stdout, err = run(capsys, videos, "--out", out, "--weights", ".", "--shard", "0/2")
    assert code == 3, err
    assert states(stdout) == {"broken": "failed", "v2": "extracted", "v3": "extracted"} | {
        "v6": "extracted"
    }
    assert "shard 0/2: 3 extracted, 0 cached, 1 failed" in err and "4 in other shards" in err
    assert not (out / "manifest.json").exists() and not (out / "failures.json").exists()
    code, stdout, err = run(capsys, videos, "--out", out, "--weights", ".", "--shard", "1/2")
    assert code == 0, err
    assert sorted(states(stdout)) == ["v0", "v1", "v4", "v5"]
    assert sorted(p.name for p in out.iterdir()) == [
        "audio",
        "manifest.part-00000-of-00002.json",
        "manifest.part-00001-of-00002.json",
        "visual",
    ]

    code, stdout, err = run(capsys, "--merge", out)
    assert code == 3 and stdout == ""
    assert err.strip() == (
        f"avloc extract-features: merged 2 parts: 7 videos, 1 failed (listed in "
        f"{out / 'failures.json'}) -> {out / 'manifest.json'}"
    )
    assert arrays(out) == arrays(single)
    merged = json.loads((out / "manifest.json").read_text())
    assert list(merged["videos"]) == list(LENGTHS)  # in input order
    expected = json.loads((single / "manifest.json").read_text())["videos"]
    for video_id, entry in merged["videos"].items():
        assert {k: v for k, v in entry.items() if k != "created"} == {
            k: v for k, v in expected[video_id].items() if k != "created"
        }
    failures = json.loads((out / "failures.json").read_text())["failures"]
    assert failures == json.loads((single / "failures.json").read_text())["failures"]

    # A shard rerun finds its videos finished (nothing decoded) and merges again.
    code, stdout, err = run(capsys, videos, "--out", out, "--weights", ".", "--shard", "1/2")
    assert code == 0 and set(states(stdout).values()) == {"cached"}
    assert run(capsys, "--merge", out)[0] == 3
    assert json.loads((out / "manifest.json").read_text())["videos"] == merged["videos"]

    # A run in another number of shards would mix with these parts: refused up front.
    before = sorted(p.name for p in out.iterdir())
    code, stdout, err = run(capsys, videos, "--out", out, "--weights", ".", "--shard", "0/3")
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(
        f"avloc extract-features: error: {out} holds the manifest parts of a run in 2 shards "
        "(manifest.part-00000-of-00002.json, manifest.part-00001-of-00002.json); a run in 3 "
        "shards would mix with them: merge them first"
    )
    assert sorted(p.name for p in out.iterdir()) == before


def one_error(code, stdout, err) -> str:
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1, (code, err)
    assert err.startswith("avloc extract-features: error: ")
    return err.strip().removeprefix("avloc extract-features: error: ")


def test_merge_refuses_parts_that_do_not_fit(videos, tmp_path, capsys, monkeypatch):
    out = tmp_path / "features"
    out.mkdir()
    assert "holds no manifest part" in one_error(*run(capsys, "--merge", out))
    assert "drop --out" in one_error(*run(capsys, "--merge", out, "--out", out))
    assert "--out and --weights are required" in one_error(*run(capsys, videos))
    argv = [videos, "--out", out, "--weights", "."]
    assert "expected I/N" in one_error(*run(capsys, *argv, "--shard", "2/2"))

    # Shard 1 stops mid-way (--fail-fast and a video whose audio fails): unfinished.
    decode_audio = media.decode_audio

    def failing(path, *args, **kwargs):
        if path.name == "v1.mp4":
            raise media.MediaError(f"{path}: its audio cannot be decoded (test)")
        return decode_audio(path, *args, **kwargs)

    monkeypatch.setattr(media, "decode_audio", failing)
    assert run(capsys, *argv, "--shard", "1/2", "--fail-fast")[0] == 2  # after v0
    assert "lacks the part of shard 0/2 (manifest.part-00000-of-00002.json): run it first" in (
        one_error(*run(capsys, "--merge", out))
    )
    assert run(capsys, *argv, "--shard", "0/2")[0] == 3
    message = one_error(*run(capsys, "--merge", out))
    assert message == (
        "manifest.part-00001-of-00002.json is unfinished: 3 videos of 4 not done (v1, v4, "
        "v5): rerun shard 1/2 (it resumes where it stopped)"
    )
    assert not (out / "manifest.json").exists()

    # Resumed: v0 is not extracted again; v1 now fails and is recorded, not fatal.
    code, stdout, _ = run(capsys, *argv, "--shard", "1/2")
    assert code == 3
    assert states(stdout) == {"v0": "cached", "v4": "extracted", "v5": "extracted", "v1": "failed"}
    assert run(capsys, "--merge", out)[0] == 3
    failed = [f["id"] for f in json.loads((out / "failures.json").read_text())["failures"]]
    assert failed == ["broken", "v1"]
    manifest = (out / "manifest.json").read_text()

    # Other weights in one shard.
    monkeypatch.setattr(
        pipeline, "load_extractor", lambda *a, **k: mh.standin_extractor(2, weights_id="other")
    )
    assert run(capsys, *argv, "--shard", "1/2")[0] == 3
    assert one_error(*run(capsys, "--merge", out)) == (
        "manifest.part-00000-of-00002.json and manifest.part-00001-of-00002.json were extracted "
        "with different weights or settings (weights 'standin-v1' against 'other'): rerun the "
        "shards with the same weights and options"
    )
    # A video in two parts, and a part whose array was changed since.
    first = out / "manifest.part-00000-of-00002.json"
    part = json.loads(first.read_text())
    second = out / "manifest.part-00001-of-00002.json"
    other = json.loads(second.read_text())
    other["extractor"] = part["extractor"]
    other["assigned"].append(part["assigned"][0])
    second.write_text(json.dumps(other))
    message = one_error(*run(capsys, "--merge", out))
    assert message == (
        f"video {part['assigned'][0][1]!r} is in both manifest.part-00000-of-00002.json and "
        "manifest.part-00001-of-00002.json; expected each video in one part"
    )
    other["assigned"].pop()
    second.write_text(json.dumps(other))
    np.save(out / "visual" / "v6.npy", np.zeros((3, 7), np.float32))
    message = one_error(*run(capsys, "--merge", out))
    assert message.startswith("manifest.part-00000-of-00002.json: video 'v6' is not assigned ")
    assert "(visual/v6.npy, audio/v6.npy) are missing or were changed since" in message
    assert (out / "manifest.json").read_text() == manifest  # nothing written by a refusal


def test_a_changed_array_or_weight_is_extracted_again(videos, tmp_path, capsys, monkeypatch):
    out = tmp_path / "features"
    clip = videos / "v0.mp4"
    assert run(capsys, clip, "--out", out, "--weights", ".")[0] == 0
    entry = json.loads((out / "manifest.json").read_text())["videos"]["v0"]
    original = (out / "visual" / "v0.npy").read_bytes()
    # A rerun killed after rewriting the array, before the manifest: not the old entry's.
    # (Killed while writing the audio array, it also left a temporary file behind.)
    np.save(out / "visual" / "v0.npy", np.ones((1, 7), np.float32))
    (out / "audio" / ".v0.tmp-123.npy").write_bytes(b"\x93NUMPY")
    code, stdout, _ = run(capsys, clip, "--out", out, "--weights", ".")
    assert states(stdout) == {"v0": "extracted"}
    assert (out / "visual" / "v0.npy").read_bytes() == original
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "manifest.json",
        "v0.npy",
        "v0.npy",
    ]
    assert states(run(capsys, clip, "--out", out, "--weights", ".")[1]) == {"v0": "cached"}
    # Other weights: extracted again, and the manifest says with which.
    monkeypatch.setattr(
        pipeline, "load_extractor", lambda *a, **k: mh.standin_extractor(2, weights_id="v2")
    )
    assert states(run(capsys, clip, "--out", out, "--weights", ".")[1]) == {"v0": "extracted"}
    again = json.loads((out / "manifest.json").read_text())["videos"]["v0"]
    assert entry["extractor"]["weights"] == "standin-v1" and again["extractor"]["weights"] == "v2"
    assert again["visual_key"] == pipeline.file_key(out / "visual" / "v0.npy")
