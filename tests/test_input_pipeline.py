"""grain input pipeline: determinism and exact resume, process sharding, snippet sampling,
padding and masks, and evaluation that covers every video exactly once."""

import itertools

import numpy as np
import pytest

from avloc_jax.data import input_pipeline as ip


def make_source(n=23, lengths=None, dv=5, da=3, c=4, seed=0):
    """Records whose visual[t, 0] = index and visual[t, 1] = t (to trace what was read)."""
    rng = np.random.default_rng(seed)
    lengths = lengths if lengths is not None else rng.integers(3, 50, size=n)
    records = []
    for i, t in enumerate(lengths):
        visual = rng.normal(size=(int(t), dv)).astype(np.float32)
        visual[:, 0] = i
        visual[:, 1] = np.arange(t)
        audio = np.full((int(t), da), i, np.float32)
        records.append(
            {
                "video_id": f"v{i}",
                "visual": visual,
                "audio": audio,
                "labels": np.eye(c, dtype=np.float32)[i % c],
            }
        )
    return records


def take(iterator, k):
    return list(itertools.islice(iterator, k))


def video_ids(batch):
    """Dataset index of each row (visual[:, 0, 0] = index, every row has >= 1 snippet)."""
    return batch["visual"][:, 0, 0].astype(int).tolist()


def test_train_batches_shapes_masks_and_padding():
    source = make_source(lengths=[3, 40, 12, 7, 25, 16])
    batches = take(ip.train_batches(source, batch_size=3, seed=0, num_snippets=16), 4)
    for batch in batches:
        assert set(batch) == {"visual", "audio", "mask", "labels"}
        assert batch["visual"].shape == (3, 16, 5) and batch["visual"].dtype == np.float32
        assert batch["audio"].shape == (3, 16, 3) and batch["mask"].dtype == bool
        assert batch["labels"].shape == (3, 4)
        for row, index in enumerate(video_ids(batch)):
            length = len(source[index]["visual"])
            valid = min(length, 16)
            np.testing.assert_array_equal(batch["mask"][row], np.arange(16) < valid)
            assert not batch["visual"][row, valid:].any() and not batch["audio"][row, valid:].any()
            times = batch["visual"][row, :valid, 1]
            assert np.all(np.diff(times) > 0)  # temporal order kept
            if length <= 16:
                np.testing.assert_array_equal(times, np.arange(length))  # short: all snippets
            np.testing.assert_array_equal(
                batch["audio"][row, :valid], index
            )  # audio follows visual
            np.testing.assert_array_equal(batch["labels"][row], source[index]["labels"])


def test_length_is_capped_by_the_longest_video():
    source = make_source(lengths=[10] * 8)  # AVE-like
    batch = next(ip.train_batches(source, batch_size=4, seed=0, num_snippets=64))
    assert batch["visual"].shape == (4, 10, 5) and batch["mask"].all()


def test_determinism_and_exact_resume():
    source = make_source()
    kwargs = dict(batch_size=4, seed=7, num_snippets=8, sampling="random")
    run = take(ip.train_batches(source, **kwargs), 15)  # crosses several epochs (23 videos)
    again = take(ip.train_batches(source, **kwargs), 15)
    resumed = take(ip.train_batches(source, start_step=9, **kwargs), 6)
    for a, b in zip(run, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for a, b in zip(run[9:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    other = take(ip.train_batches(source, **{**kwargs, "seed": 8}), 15)
    assert any(not np.array_equal(a["visual"], b["visual"]) for a, b in zip(run, other))
    # Without read threads the same batches come out (no thread-dependent randomness).
    plain = take(ip.train_batches(source, num_threads=0, **kwargs), 15)
    for a, b in zip(run, plain):
        np.testing.assert_array_equal(a["visual"], b["visual"])


def test_epochs_cover_the_data_and_reshuffle():
    source = make_source(n=24)
    batches = take(ip.train_batches(source, batch_size=4, seed=1, num_snippets=8), 12)  # two epochs
    epoch1 = [i for b in batches[:6] for i in video_ids(b)]
    epoch2 = [i for b in batches[6:] for i in video_ids(b)]
    assert sorted(epoch1) == list(range(24)) and sorted(epoch2) == list(range(24))
    assert epoch1 != epoch2 and epoch1 != list(range(24))


class RecordingSource:
    """A split that remembers which videos were decoded; like the TFDS splits it knows
    its snippet counts without decoding."""

    def __init__(self, records):
        self.records, self.read = records, set()
        self.lengths = np.array([len(r["visual"]) for r in records])

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        self.read.add(int(index))
        return self.records[index]


def test_process_slices_are_disjoint_cover_the_data_and_match_one_process():
    records = make_source(n=24)
    kwargs = dict(batch_size=6, seed=3, num_snippets=8)
    single = take(ip.train_batches(records, **kwargs), 4)  # one epoch
    per_process = []
    for p in range(3):
        source = RecordingSource(records)
        batches = take(
            ip.train_batches(source, process_index=p, process_count=3, num_threads=0, **kwargs), 4
        )
        assert all(b["visual"].shape[0] == 2 for b in batches)  # local batch = 6 // 3
        ids = [i for b in batches for i in video_ids(b)]
        assert source.read == set(ids)  # each process decoded only its own videos
        per_process.append(batches)
    reads = [set(i for b in run for i in video_ids(b)) for run in per_process]
    assert set.union(*reads) == set(range(24)) and sum(map(len, reads)) == 24  # disjoint, covering
    # The global batch is the same with 1 or 3 processes: rows [2p, 2p+2) come from process p.
    for k in range(4):
        for key in single[k]:
            np.testing.assert_array_equal(
                np.concatenate([run[k][key] for run in per_process]), single[k][key]
            )
    with pytest.raises(ValueError, match="divisible by process_count"):
        next(ip.train_batches(records, batch_size=4, seed=0, num_snippets=8, process_count=3))


def test_default_buckets_and_shape_count():
    assert ip.default_buckets(10) == (10,)
    assert ip.default_buckets(16) == (16,)
    assert ip.default_buckets(300) == (16, 32, 64, 128, 256, 300)
    lengths = np.array([3, 20, 20, 300, 100])
    assert ip.num_eval_shapes(lengths) == 4  # 16, 32, 128, 300
    assert ip.resolve_buckets(lengths, (64, 128)) == (64, 128, 300)  # longest video added


@pytest.mark.parametrize("process_count", [1, 2, 4])
def test_eval_covers_every_video_once_in_lockstep(process_count):
    source = make_source(n=37)
    per_process = []
    for p in range(process_count):
        per_process.append(
            list(
                ip.eval_batches(
                    source, batch_size=8, buckets=None, process_index=p, process_count=process_count
                )
            )
        )
    # Same number of batches and the same shapes on every process.
    shapes = [[b["visual"].shape for b, _ in run] for run in per_process]
    assert all(s == shapes[0] for s in shapes)
    lengths = ip.source_lengths(source)
    assert len({s[1] for s in shapes[0]}) == ip.num_eval_shapes(lengths)
    seen = []
    for run in per_process:
        for batch, indices in run:
            assert set(batch) == {"visual", "audio", "mask", "labels", "example_mask"}
            assert len(indices) == batch["visual"].shape[0] == 8 // process_count
            np.testing.assert_array_equal(batch["example_mask"], np.asarray(indices) >= 0)
            for row, index in enumerate(indices):
                if index < 0:
                    assert not batch["mask"][row].any() and not batch["visual"][row].any()
                    continue
                seen.append(index)
                t = len(source[index]["visual"])
                np.testing.assert_array_equal(
                    batch["mask"][row], np.arange(batch["mask"].shape[1]) < t
                )
                np.testing.assert_array_equal(batch["visual"][row, :t], source[index]["visual"])
                np.testing.assert_array_equal(batch["labels"][row], source[index]["labels"])
    assert sorted(seen) == list(range(37))


def test_eval_bucket_assignment_and_given_buckets():
    source = make_source(lengths=[10, 10, 10, 10, 10])
    out = list(ip.eval_batches(source, batch_size=2, buckets=(10,)))
    assert [b["visual"].shape for b, _ in out] == [(2, 10, 5)] * 3
    assert out[-1][1] == [4, -1]
    source = make_source(lengths=[5, 70, 33, 16, 17])
    plan = ip.eval_plan(ip.source_lengths(source), batch_size=4)
    assert plan == [
        (16, [0, 3, -1, -1]),
        (32, [4, -1, -1, -1]),
        (64, [2, -1, -1, -1]),
        (70, [1, -1, -1, -1]),
    ]


def test_eval_empty_process_batches_keep_lockstep():
    source = make_source(n=3)
    runs = [
        list(ip.eval_batches(source, batch_size=8, process_index=p, process_count=4))
        for p in range(4)
    ]
    assert [len(r) for r in runs] == [len(runs[0])] * 4
    # 3 videos in one global batch of 8: processes 2 and 3 get all-padding batches.
    assert all(i == -1 for _, idx in runs[3] for i in idx)
    assert not any(b["example_mask"].any() for b, _ in runs[3])


def test_prefetch_to_device_keeps_order_and_stays_ahead():
    import jax

    from avloc_jax.common import parallel

    sharding = parallel.batch_sharded(parallel.make_mesh())
    source = make_source(n=9)
    host = take(
        ip.train_batches(source, batch_size=2 * jax.device_count(), seed=3, num_snippets=8), 5
    )
    reads = []

    def counted():
        for batch in host:
            reads.append(len(reads))
            yield batch

    out = ip.prefetch_to_device(counted(), sharding, size=2)
    assert reads == []  # nothing is read before the first batch is asked for
    for k, expected in enumerate(host):
        got = next(out)
        assert len(reads) == min(k + 1 + 2, len(host))  # `size` batches beyond the yielded one
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert isinstance(got[key], jax.Array) and got[key].sharding == sharding
            np.testing.assert_array_equal(np.asarray(got[key]), value)
    with pytest.raises(StopIteration):
        next(out)
    with pytest.raises(ValueError, match="prefetch size"):
        next(ip.prefetch_to_device(iter(host), sharding, size=0))


def test_train_seed_range():
    with pytest.raises(ValueError, match="seed must be in"):
        ip.train_dataset(make_source(n=4), batch_size=2, seed=-1, num_snippets=8)
