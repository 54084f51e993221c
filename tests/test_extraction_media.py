"""Feature extraction on real media files synthesised with PyAV (tests/media_helpers.py):
decoding, the 25-fps grid, the snippet grid and the audio/visual alignment, the cache,
and the bad inputs. The networks are small stand-ins with I3D's and VGGish's call
signatures; the pipeline around them (batching, sharding, alignment, files) is real."""

import json
import os
import sys
from fractions import Fraction

import media_helpers as mh
import numpy as np
import pytest

from avloc_jax.extraction import align, flow, media, pipeline

RATE = align.SAMPLE_RATE


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Every media file of the module, written once."""
    root = tmp_path_factory.mktemp("media")
    made = {
        "clip": mh.write_clip(root / "clip.mp4"),
        "clip30": mh.write_clip(root / "clip30.mp4", fps=30, index_frames=True),
        "stereo": mh.write_clip(
            root / "stereo.mp4", rate=44100, channels=2, right_channel_silent=True
        ),
        "six": mh.write_clip(root / "six.mp4", channels=6),
        "audio_only": mh.write_clip(root / "audio_only.mp4", video=False),
        "silent": mh.write_clip(root / "silent.mp4", audio=False),
        "short": mh.write_clip(root / "short.mp4", seconds=0.4),
        "rotated": mh.write_clip(root / "rotated.mp4", rotation=90),
        "mirrored": mh.write_clip(root / "mirrored.mp4", rotation=90, hflip=True),
        "faststart": mh.write_clip(root / "faststart.mp4", faststart=True),
    }
    rng = np.random.default_rng(0)
    steps = rng.choice([20, 40, 60], size=200)
    made["vfr_times"] = [int(t) for t in np.concatenate([[0], np.cumsum(steps)]) if t < 3000]
    made["vfr"] = mh.write_clip(
        root / "vfr.mp4", timestamps_ms=made["vfr_times"], index_frames=True
    )
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    made["corrupt"] = corrupt
    whole = made["clip"].read_bytes()
    made["cut"] = root / "cut.mp4"  # the moov atom (at the end) is gone
    made["cut"].write_bytes(whole[: len(whole) // 2])
    fast = made["faststart"].read_bytes()
    made["cut_faststart"] = root / "cut_faststart.mp4"  # header intact, half the media
    made["cut_faststart"].write_bytes(fast[: len(fast) // 2])
    return made


# ----------------------------------------------------------------------------- decoding


def test_probe_and_decode_counts(clips):
    info = media.probe(clips["clip"])
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert info.duration == pytest.approx(3.0) and info.average_fps == 25
    assert info.has_audio and info.audio_channels == 1 and info.audio_sample_rate == RATE

    frames = media.decode_video(clips["clip"], size=mh.SIZE, short_side=mh.SIZE)
    assert frames.shape == (75, mh.SIZE, mh.SIZE, 3) and frames.dtype == np.uint8  # 3 s x 25
    # the red square moves right: its centre of mass over the columns increases
    red = frames[..., 0].astype(float) - frames[..., 1]
    columns = (red.sum(axis=1) * np.arange(mh.SIZE)).sum(-1) / red.sum(axis=(1, 2))
    assert np.all(np.diff(columns[::8]) > 0)

    samples = media.decode_audio(clips["clip"])
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert 3 * RATE <= len(samples) <= 3 * RATE + 1024  # AAC pads its last frame
    onset = np.argmax(np.abs(samples) > 0.05) / RATE
    assert onset == pytest.approx(mh.TONE_AT, abs=0.002)
    assert np.abs(samples[: int(1.9 * RATE)]).max() < 1e-3


def test_resize_is_short_side_then_centre_crop():
    assert media.resized_size(640, 480) == (341, 256)
    assert media.resized_size(480, 640) == (256, 341)
    assert media.resized_size(1920, 1080) == (455, 256)
    frames = np.arange(2 * 256 * 341 * 3, dtype=np.uint32).reshape(2, 256, 341, 3)
    crop = media.center_crop(frames, 224)
    assert crop.shape == (2, 224, 224, 3)
    assert np.array_equal(crop[0, 0, 0], frames[0, 16, 58])  # (256-224)/2, (341-224)//2


def test_stereo_44k_is_averaged_and_resampled(clips):
    samples = media.decode_audio(clips["stereo"])
    assert abs(len(samples) - 3 * RATE) <= 1024
    # left = 0.5 sine, right = silence: the mean has amplitude 0.25
    peak = np.abs(samples[int(2.2 * RATE) : int(2.8 * RATE)]).max()
    assert peak == pytest.approx(0.25, abs=0.02)


def test_30fps_is_resampled_to_25_by_timestamps(clips):
    frames = media.decode_video(clips["clip30"], size=48, short_side=48)  # not resized
    assert len(frames) == 75
    # output frame k (time k/25) shows source frame floor(k x 30 / 25)
    expected = (np.arange(75) * 30) // 25
    assert np.array_equal(mh.frame_indices(frames), expected)


def test_variable_frame_rate_warns_and_resamples(clips):
    with pytest.warns(media.MediaWarning, match="variable frame rate"):
        frames = media.decode_video(clips["vfr"], size=48, short_side=48)
    times = np.asarray(clips["vfr_times"])
    end_ms = times[-1] + np.median(np.diff(times))
    assert len(frames) == int(np.ceil(end_ms / 40))
    # frame k shows the last source frame whose timestamp is <= 40 k ms
    expected = np.searchsorted(times, np.arange(len(frames)) * 40, side="right") - 1
    assert np.array_equal(mh.frame_indices(frames), expected)
    assert not media.variable_frame_rate(np.full(10, 1 / 30), tick=1e-3)
    assert not media.variable_frame_rate(np.array([0.033, 0.034, 0.033, 0.034]), tick=1e-3)


def test_rotation_is_applied_as_a_player_shows_it(clips):
    assert media.probe(clips["rotated"]).rotation == 90
    import av

    with av.open(str(clips["rotated"])) as container:
        first = next(container.decode(video=0))
        matrix = np.frombuffer(bytes(first.side_data.get("DISPLAYMATRIX")), np.int32)
    assert matrix[[0, 1, 3, 4]].tolist() == [0, -65536, 65536, 0]
    assert media.display_rotation(matrix) == (90.0, False) and first.rotation == 90
    with pytest.warns(media.MediaWarning, match="rotation metadata"):
        rotated = media.decode_video(clips["rotated"], size=48, short_side=48)
    upright = media.decode_video(clips["clip"], size=48, short_side=48)
    assert np.array_equal(rotated, np.rot90(upright, k=1, axes=(1, 2)))


def test_rotation_matrix_rules(clips):
    def matrix(degrees, flip=False):
        # counter-clockwise `degrees` in 16.16 fixed point, as PyAV's set_display_rotation
        # writes it (90 -> [0, -1, 1, 0]: see the rotated clip)
        r = np.radians(degrees)
        m = np.array([np.cos(r), -np.sin(r), 0, np.sin(r), np.cos(r), 0, 0, 0, 0])
        if flip:
            m[[0, 3]] *= -1
        m = np.rint(m * 65536).astype(np.int32)
        m[8] = 1 << 30
        return m.tobytes()

    assert media.quarter_turns("v.mp4", None) == 0
    assert media.quarter_turns("v.mp4", matrix(90)) == 1
    assert media.quarter_turns("v.mp4", matrix(-90)) == 3
    assert media.quarter_turns("v.mp4", matrix(180)) == 2
    with pytest.raises(media.MediaError, match=r"v\.mp4: rotation metadata of 45\.0 degrees"):
        media.quarter_turns("v.mp4", matrix(45))
    with pytest.raises(media.MediaError, match=r"v\.mp4: .*mirrors"):
        media.quarter_turns("v.mp4", matrix(0, flip=True))
    # a real file written with a flip is refused when probed
    with pytest.raises(media.MediaError, match=r"mirrored\.mp4: .*mirrors"):
        media.probe(clips["mirrored"])


@pytest.mark.parametrize(
    "name, message",
    [
        ("corrupt", r"corrupt\.mp4: cannot be opened as a media file .*corrupt, truncated"),
        ("cut", r"cut\.mp4: cannot be opened as a media file"),
        ("audio_only", r"audio_only\.mp4: has no video stream \(streams: audio\)"),
        ("six", r"six\.mp4: its audio has 6 channels \(5\.1\); expected mono or stereo"),
        ("short", r"short\.mp4: lasts 0\.400 s; expected at least one snippet"),
    ],
)
def test_bad_inputs_are_refused_when_probed(clips, name, message):
    with pytest.raises(media.MediaError, match=message):
        media.probe(clips[name])


def test_truncated_media_with_an_intact_header_is_refused(clips):
    info = media.probe(clips["cut_faststart"])  # the header still says 3 s
    assert info.duration == pytest.approx(3.0)
    with pytest.raises(media.MediaError, match=r"cut_faststart\.mp4: .*truncated"):
        media.decode_video(clips["cut_faststart"], size=mh.SIZE, short_side=mh.SIZE)


def test_a_longer_audio_track_is_not_taken_for_truncation(tmp_path):
    # Matroska has no per-stream duration: the file's (4 s, the audio's) is not the video's
    path = mh.write_clip(
        tmp_path / "long_audio.mkv", seconds=2.0, audio_seconds=4.0, container_format="matroska"
    )
    info = media.probe(path)
    assert info.stream_duration is None and info.duration == pytest.approx(4.0, abs=0.2)
    assert len(media.decode_video(path, size=mh.SIZE, short_side=mh.SIZE)) == 50
    assert len(media.decode_audio(path)) >= 4 * RATE


def test_missing_audio_is_refused_unless_allowed(clips):
    info = media.probe(clips["silent"])
    assert not info.has_audio
    with pytest.raises(media.MediaError, match=r"silent\.mp4: has no audio track"):
        media.require_audio(info, allow_missing=False)
    messages = []
    assert media.require_audio(info, allow_missing=True, notice=messages.append) is False
    assert "trained with audio" in messages[0] and "silent.mp4" in messages[0]
    with pytest.raises(media.MediaError, match="no audio track"):
        media.decode_audio(clips["silent"])


# ----------------------------------------------------------------------------- grid


def test_snippet_grid_and_worked_example():
    assert [align.num_snippets(n) for n in (15, 16, 31, 32, 75)] == [0, 1, 1, 2, 4]
    assert np.allclose(align.snippet_bounds(3), [[0, 0.64], [0.64, 1.28], [1.28, 1.92]])
    # docs/extraction.md: 75 frames -> 4 snippets, 3 examples
    assert align.examples_needed(4) == 3
    weights = align.overlap_weights(4, 3)
    assert np.allclose(weights, [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    # a snippet beyond the last example takes the last one; rows always sum to 1
    assert np.allclose(align.overlap_weights(5, 2)[4], [0, 1])
    assert np.allclose(align.overlap_weights(30, 20).sum(axis=1), 1)
    # the waveform is padded so that it frames into exactly the examples needed
    assert len(align.fit_waveform(np.ones(100), 4)) == 3 * 15360 + 400
    assert len(mh.toy_log_mel(align.fit_waveform(np.ones(100), 4), RATE)) == 3
    aligned = align.align_audio(np.array([[0.0], [3.0], [6.0]]), 4)
    assert np.allclose(aligned[:, 0], [0, 1.5, 3, 6])


# ----------------------------------------------------------------------------- pipeline


def test_pipeline_aligns_the_tone_onset_with_its_snippet(clips, tmp_path):
    out = tmp_path / "features"
    result = pipeline.extract_features([clips["clip"]], out, mh.standin_extractor(), progress=False)
    (video,) = result.videos
    visual = np.load(out / "visual" / "clip.npy")
    audio = np.load(out / "audio" / "clip.npy")
    assert visual.shape == (4, 4) and audio.shape == (4, 2)  # T = floor(75 / 16)
    assert visual.dtype == audio.dtype == np.float32
    # pixels reach the network in [-1, 1]: the background is black (-1), the square red
    assert np.all(visual[:, 1:3] < -0.99) and np.all(visual[:, 0] > -0.9)
    assert np.all(np.diff(visual[:, 3]) > 0)  # the square moves right, snippet by snippet
    # the tone starts at 1.92 s = the start of snippet 3: the energy jumps there
    energy = audio[:, 0]
    half_way = 0.5 * (energy.min() + energy.max())
    assert np.flatnonzero(energy > half_way).tolist() == [3]
    assert energy[3] - energy[:3].max() > 2.0

    entry = json.loads((out / "manifest.json").read_text())["videos"]["clip"]
    assert entry == video.entry
    assert (entry["frames"], entry["snippets"], entry["fps"]) == (75, 4, 25)
    assert entry["duration"] == pytest.approx(3.0)
    assert 3 * RATE <= entry["audio_samples"] <= 3 * RATE + 1024
    assert entry["source"] == str(clips["clip"].resolve())
    assert entry["size"] == clips["clip"].stat().st_size
    assert entry["key"] == pipeline.file_key(clips["clip"]) and entry["key"].startswith("sha256:")
    assert entry["extractor"]["weights"] == "standin-v1"
    assert result.stats.extracted == 1 and result.stats.frames == 75
    assert sorted(p.name for p in out.rglob("*")) == [
        "audio", "clip.npy", "clip.npy", "manifest.json", "visual",
    ]  # fmt: skip


def test_cache_skips_unchanged_videos(clips, tmp_path, monkeypatch):
    out = tmp_path / "features"
    extractor = mh.standin_extractor()
    source = tmp_path / "clip.mp4"
    source.write_bytes(clips["clip"].read_bytes())
    first = pipeline.extract_features([source], out, extractor, progress=False)
    stamp = (out / "visual" / "clip.npy").stat().st_mtime_ns

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached video was decoded again")

    with monkeypatch.context() as patch:
        patch.setattr(media, "probe", no_decoding)
        patch.setattr(media, "VideoReader", no_decoding)
        os.utime(source)  # touching the file does not change its content key
        second = pipeline.extract_features([source], out, extractor, progress=False)
    assert second.videos[0].cached and second.stats.cached == 1
    assert second.videos[0].entry == first.videos[0].entry
    assert (out / "visual" / "clip.npy").stat().st_mtime_ns == stamp

    # other weights, or another video under the same name: extracted again
    other = pipeline.extract_features(
        [source], out, mh.standin_extractor(weights_id="standin-v2"), progress=False
    )
    assert not other.videos[0].cached
    source.write_bytes(clips["clip30"].read_bytes())
    changed = pipeline.extract_features([source], out, extractor, progress=False)
    assert not changed.videos[0].cached
    assert changed.videos[0].entry["key"] != first.videos[0].entry["key"]
    again = pipeline.extract_features([source], out, extractor, cache=False, progress=False)
    assert not again.videos[0].cached


def test_nothing_half_written_when_a_video_fails(clips, tmp_path):
    out = tmp_path / "features"
    with pytest.raises(media.MediaError, match=r"cut_faststart\.mp4: .*truncated"):
        pipeline.extract_features(
            [clips["clip"], clips["cut_faststart"]], out, mh.standin_extractor(), progress=False
        )
    # the good video is complete and recorded; the bad one left no file at all
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "clip.npy",
        "clip.npy",
        "manifest.json",
    ]
    assert list(json.loads((out / "manifest.json").read_text())["videos"]) == ["clip"]


def test_pipeline_refuses_bad_videos_before_any_work(clips, tmp_path):
    out = tmp_path / "features"
    extractor = mh.standin_extractor()
    for name in ("corrupt", "audio_only", "six", "short", "silent", "mirrored"):
        with pytest.raises(media.MediaError, match=clips[name].name.replace(".", r"\.")):
            pipeline.extract_features([clips["clip"], clips[name]], out, extractor, progress=False)
        assert not out.exists()  # probed up front: nothing was extracted
    with pytest.raises(media.MediaError, match=r"nothing\.mp4: no such file"):
        pipeline.extract_features([out / "nothing.mp4"], out, extractor, progress=False)
    with pytest.raises(ValueError, match="would both be written as 'clip'"):
        pipeline.video_ids([clips["clip"], out / "clip.mkv"])


def test_missing_audio_allowed_gives_silence(clips, tmp_path):
    out = tmp_path / "features"
    messages = []
    result = pipeline.extract_features(
        [clips["silent"]],
        out,
        mh.standin_extractor(),
        allow_missing_audio=True,
        progress=False,
        notice=messages.append,
    )
    audio = np.load(result.videos[0].audio)
    assert audio.shape == (4, 2)
    assert np.allclose(audio, np.log(0.01))  # the stand-in's value for silence
    assert any("trained with audio" in m for m in messages)
    assert result.videos[0].entry["audio_track"].startswith("missing")


def test_batches_are_padded_and_trimmed(tmp_path):
    import flax.linen as nn

    class Sum(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x.reshape(x.shape[0], -1).sum(-1, keepdims=True)

    forward = pipeline.ShardedApply(Sum().apply, {}, batch_size=4)
    x = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
    assert np.allclose(forward(x)[:, 0], x.sum(-1))  # 2 batches, the last one padded


def test_prefetch_runs_ahead_boundedly_and_passes_errors_on():
    import time

    produced = []

    def slow_consumer_source():
        for i in range(10):
            produced.append(i)
            yield i
        raise media.MediaError("x.mp4: broken at the end")

    stats = pipeline.ExtractionStats()
    items = pipeline.prefetch(slow_consumer_source(), depth=2, stats=stats)
    assert next(items) == 0
    time.sleep(0.3)  # the thread decodes ahead while we "compute", but only `depth` items
    assert 2 <= len(produced) <= 4
    rest = []
    with pytest.raises(media.MediaError, match="x.mp4: broken"):
        for item in items:
            rest.append(item)
    assert rest == list(range(1, 10))


def test_flow_without_opencv_is_a_clear_error(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with pytest.raises(flow.FlowUnavailable, match=r"pip install -e '\.\[flow\]'"):
        pipeline.extract_features(
            [clips["clip"]], tmp_path, mh.standin_extractor(flow=True), flow=True, progress=False
        )


def test_flow_stream_is_concatenated_after_rgb(clips, tmp_path):
    # OpenCV with the contrib modules is in the test extra, so this runs in CI.
    import cv2

    assert hasattr(cv2, "optflow"), "install opencv-contrib-python-headless (the test extra)"
    result = pipeline.extract_features(
        [clips["clip"]], tmp_path, mh.standin_extractor(flow=True), flow=True, progress=False
    )
    visual = np.load(result.videos[0].visual)
    rgb_only = np.load(
        pipeline.extract_features(
            [clips["clip"]], tmp_path / "rgb", mh.standin_extractor(), progress=False
        )
        .videos[0]
        .visual
    )
    assert visual.shape == (4, 4 + 3)  # [RGB, flow], the W-TALC joint layout
    assert np.allclose(visual[:, :4], rgb_only, atol=2e-2)  # flow crops the resized frame
    flow_x, flow_y = visual[:, 4], visual[:, 5]
    assert np.all(flow_x > 0.005) and np.all(np.abs(flow_y) < 0.2 * flow_x)  # moving right
    assert np.all(np.abs(visual[:, 4:6]) <= 1)
    assert result.stats.flow_seconds > 0


def test_flow_fields_scale_and_repeat_the_last():
    class Shift:
        def calc(self, a, b, _):
            return np.full((*a.shape, 2), 30.0 if a.mean() < b.mean() else -10.0, np.float32)

    frames = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (0, 50, 100)])
    fields = flow.flow_fields(frames, None, Shift())
    assert np.allclose(fields[:, 0, 0, 0], [1.0, 1.0, 1.0])  # 30 px clipped to 20 -> 1
    fields = flow.flow_fields(frames, np.full((4, 4, 3), 10, np.uint8), Shift())
    assert np.allclose(fields[:, 0, 0, 0], [1.0, 1.0, -0.5])  # the last against the next
    assert Fraction(align.EXAMPLE_SECONDS) == Fraction(24, 25)
