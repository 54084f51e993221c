"""Host input pipeline (grain) over random-access splits of Records.

Training (`train_batches`): an infinite stream of fixed-shape batches. One global
stream of videos is defined for all processes: the split shuffled once per epoch (grain's
index shuffle, seeded by (seed, epoch)), each video sampled to L snippets with an rng keyed
by its position in the stream. Global batch k is positions [kB, (k+1)B) of that stream,
and process p reads and yields only its slice [kB + pb, kB + (p+1)b), b = B / P. So the
global batch does not depend on the number of processes (2 processes train exactly like
1), the processes' reads are disjoint within an epoch and together cover the split, and
everything is grain `MapDataset` random access: batch k is a pure function of (seed, k,
process_index, process_count), and a run resumed at `start_step` sees exactly the batches
it would have.

Evaluation (`eval_batches`): every video once, at full length, padded to the smallest of
a few length buckets so that XLA compiles one shape per bucket. The global batch plan is
the same on every process; process p takes its slice of each global batch, so all
processes run the same number of steps with the same shapes.

``batch_size`` is the GLOBAL batch size in both: each process yields
``batch_size // process_count`` examples per batch.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import grain
import jax
import numpy as np
import numpy.typing as npt

from avloc_jax.common import parallel
from avloc_jax.data.records import Record
from avloc_jax.data.sampling import check_mode, host_uniforms, sample_snippets, train_length

MIN_BUCKET = 16
TRAIN_KEYS = ("visual", "audio", "mask", "labels")
EVAL_KEYS = ("visual", "audio", "mask", "labels", "example_mask")


# ----------------------------------------------------------------------------- helpers


def source_lengths(source: Sequence[Record]) -> np.ndarray:
    """int64 [N] snippet counts: the source's stored ``lengths`` if it has them (TFDS
    splits from avloc_jax.data.datasets), else read from every record."""
    lengths = getattr(source, "lengths", None)
    if lengths is not None:
        return np.asarray(lengths, np.int64)
    return np.asarray([len(source[i]["visual"]) for i in range(len(source))], np.int64)


def _check_record(record: Record, where: str) -> None:
    if len(record["visual"]) != len(record["audio"]):
        raise ValueError(
            f"{where}: visual has {len(record['visual'])} snippets, audio {len(record['audio'])}"
        )
    if len(record["visual"]) == 0:
        raise ValueError(f"{where}: zero-length video")


# ----------------------------------------------------------------------------- training


def train_example(
    record: Record, rng: np.random.Generator, *, num_snippets: int, sampling: str
) -> dict[str, np.ndarray]:
    """Record -> visual [L, Dv], audio [L, Da], mask [L] bool, labels [C] (L = num_snippets),
    by the one sampling rule (`sampling.sample_snippets`) with numbers drawn from `rng`."""
    _check_record(record, f"video {record.get('video_id')}")
    length = len(record["visual"])
    example = sample_snippets(
        np,
        {"visual": record["visual"], "audio": record["audio"]},
        length,
        num_snippets,
        sampling,
        host_uniforms(length, num_snippets, sampling, rng),
    )
    return {**example, "labels": np.asarray(record["labels"], np.float32)}


def train_dataset(
    source: Sequence[Record],
    *,
    batch_size: int,
    seed: int,
    num_snippets: int,
    sampling: str = "random",
    process_index: int = 0,
    process_count: int = 1,
) -> grain.MapDataset:
    """The infinite batched training MapDataset of one process (see `train_batches`)."""
    check_mode(sampling)
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} must be in [0, {process_count})")
    if not 0 <= seed < 2**63:  # the range the recorded streams were seeded from
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    local = parallel.local_batch_size(batch_size, process_count=process_count)
    if len(source) == 0:
        raise ValueError("the training split is empty")
    # One L for every process (the global batch must have one shape).
    length = train_length(num_snippets, int(source_lengths(source).max()))

    def sample(record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return train_example(record, rng, num_snippets=length, sampling=sampling)

    # grain derives each random op's seed from the nearest upstream `.seed(s)` and the op's
    # distance d to it, as SeedSequence([s, d]). The stream was first seeded by hand with
    # exactly those values for d = 1 (shuffle) and d = 2 (sampling); the second `.seed`
    # keeps the sampling at d = 2 (with one, repeat would make it 3 and change every
    # sampled snippet of the recorded runs).
    stream = (
        grain.MapDataset.source(source)
        .seed(seed)
        # A new permutation per epoch: grain folds the epoch into the seed for indices past
        # the first epoch; repeat(None) then only makes the length infinite.
        .shuffle()
        .seed(seed)
        .repeat(None)
        # The sampling rng is keyed by the position in the global stream: pure, and the
        # same whatever the number of processes.
        .random_map(sample)
    )
    # Local batch m of the stream is positions [mb, (m+1)b); global batch k holds local
    # batches kP .. kP+P-1, and process p takes local batch kP + p. Slicing is lazy: a
    # process decodes only its own videos.
    return stream.batch(local, drop_remainder=True)[process_index::process_count]


def train_batches(
    source: Sequence[Record],
    *,
    batch_size: int,
    seed: int,
    num_snippets: int,
    sampling: str = "random",
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
    num_threads: int = 2,
    prefetch: int = 4,
) -> Iterator[dict[str, np.ndarray]]:
    """Infinite training batches for this process, starting at `start_step`.

    Args:
      source: random-access Records (a `datasets.RecordSource` or a list).
      batch_size: the GLOBAL batch size; this process yields batch_size // process_count.
      seed: shuffling and sampling seed.
      num_snippets: L, snippets per sampled video (min(L, longest video) is used).
      sampling: 'random' | 'uniform' | 'crop' (see `avloc_jax.data.sampling`).
      start_step: index of the first batch (resume).
      process_index / process_count: this process yields rows [p*b, (p+1)*b) of every
        global batch (and reads only those videos).
      num_threads / prefetch: grain read threads and batches read ahead (order is kept).
    Yields:
      {'visual': f32 [b, L, Dv], 'audio': f32 [b, L, Da], 'mask': bool [b, L],
       'labels': f32 [b, C]} with b = batch_size // process_count.
    """
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    ds = train_dataset(
        source,
        batch_size=batch_size,
        seed=seed,
        num_snippets=num_snippets,
        sampling=sampling,
        process_index=process_index,
        process_count=process_count,
    )
    return _iterate(ds[start_step:], num_threads, prefetch)


def _iterate(ds: grain.MapDataset, num_threads: int, prefetch: int) -> Iterator[Any]:
    """Elements of `ds` in order; read ahead by `num_threads` grain threads if > 0."""
    if num_threads > 0:
        return iter(
            ds.to_iter_dataset(
                grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
            )
        )
    return (ds[k] for k in range(len(ds)))


def prefetch_to_device(
    batches: Iterator[dict[str, np.ndarray]], sharding: jax.sharding.NamedSharding, size: int = 2
) -> Iterator[dict[str, jax.Array]]:
    """`batches` (this process's slices) as global sharded jax.Arrays, `size` ahead.

    The next `size` batches are handed to the devices before the current one is yielded:
    `jax.make_array_from_process_local_data` only starts the host-to-device copies, so they
    run while the caller's (asynchronously dispatched) step computes. Order and values are
    those of `batches`; after k batches are yielded, at most k + size have been read.
    """
    if size < 1:
        raise ValueError(f"prefetch size must be >= 1, got {size}")
    ready: collections.deque[dict[str, jax.Array]] = collections.deque()

    def enqueue(count: int) -> None:
        for batch in itertools.islice(batches, count):
            ready.append(parallel.to_global(batch, sharding))

    enqueue(size)
    while ready:
        batch = ready.popleft()
        enqueue(1)
        yield batch


# ----------------------------------------------------------------------------- evaluation


def default_buckets(max_len: int, min_bucket: int = MIN_BUCKET) -> tuple[int, ...]:
    """Padded lengths for evaluation: powers of two from `min_bucket` below `max_len`,
    then `max_len` itself. ceil(log2(max_len / min_bucket)) + 1 shapes at most:
    AVE (10) -> (10,); 300 -> (16, 32, 64, 128, 256, 300)."""
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    buckets, b = [], min_bucket
    while b < max_len:
        buckets.append(b)
        b *= 2
    return tuple(buckets) + (int(max_len),)


def resolve_buckets(lengths: np.ndarray, buckets: Sequence[int] | None) -> tuple[int, ...]:
    """The sorted buckets used: given ones (plus the longest video if it does not fit), or
    `default_buckets` of the longest video."""
    max_len = int(lengths.max()) if len(lengths) else 1
    if not buckets:
        return default_buckets(max_len)
    out = sorted({int(b) for b in buckets})
    if out[0] <= 0:
        raise ValueError(f"buckets must be positive, got {list(buckets)}")
    if out[-1] < max_len:  # never truncate a video: one extra shape instead
        out.append(max_len)
    return tuple(out)


def eval_plan(
    lengths: npt.ArrayLike,
    *,
    batch_size: int,
    buckets: Sequence[int] | None = None,
    process_index: int = 0,
    process_count: int = 1,
) -> list[tuple[int, list[int]]]:
    """This process's eval batches as (padded length, dataset indices with -1 = padding).

    Videos go to the smallest bucket that holds them, in index order; each bucket is cut
    into global batches of `batch_size` (the last one padded with -1), and process p takes
    positions [p*b, (p+1)*b) of each, b = batch_size // process_count. Every process gets
    the same number of batches with the same lengths.
    """
    local = parallel.local_batch_size(batch_size, process_count=process_count)
    counts = np.asarray(lengths, np.int64)
    if np.any(counts <= 0):
        raise ValueError(f"zero-length video at index {int(np.flatnonzero(counts <= 0)[0])}")
    used = resolve_buckets(counts, buckets)
    which = np.searchsorted(np.asarray(used), counts, side="left")  # smallest bucket >= length

    def padded(chunk: Sequence[int]) -> list[int]:  # the last global batch of a bucket
        return list(chunk) + [-1] * (batch_size - len(chunk))

    def mine(chunk: list[int]) -> list[int]:
        return chunk[process_index * local : (process_index + 1) * local]

    plan: list[tuple[int, list[int]]] = []
    for b, bucket in enumerate(used):
        members = np.flatnonzero(which == b).tolist()
        global_batches = (
            grain.MapDataset.source(members)
            .batch(batch_size, drop_remainder=False, batch_fn=padded)
            .map(mine)
        )
        # Indexed, not iterated: iterating a MapDataset starts grain's reader threads.
        plan.extend((bucket, global_batches[i]) for i in range(len(global_batches)))
    return plan


def eval_batch(
    source: Sequence[Record], indices: Sequence[int], length: int, dims: tuple[int, int, int]
) -> dict[str, np.ndarray]:
    """visual [b, length, Dv], audio [b, length, Da], mask [b, length], labels [b, C],
    example_mask [b]; index -1 gives an all-zero dummy with every mask False."""
    dv, da, c = dims
    b = len(indices)
    batch = {
        "visual": np.zeros((b, length, dv), np.float32),
        "audio": np.zeros((b, length, da), np.float32),
        "mask": np.zeros((b, length), bool),
        "labels": np.zeros((b, c), np.float32),
        "example_mask": np.zeros((b,), bool),
    }
    real = [(row, i) for row, i in enumerate(indices) if i >= 0]
    records = _get_many(source, [i for _, i in real])
    for (row, index), record in zip(real, records):
        _check_record(record, f"video {record.get('video_id')} (index {index})")
        t = len(record["visual"])
        if t > length:
            raise ValueError(f"index {index}: {t} snippets do not fit bucket {length}")
        batch["visual"][row, :t] = record["visual"]
        batch["audio"][row, :t] = record["audio"]
        batch["mask"][row, :t] = True
        batch["labels"][row] = record["labels"]
        batch["example_mask"][row] = True
    return batch


def _get_many(source: Sequence[Record], indices: Sequence[int]) -> list[Record]:
    if not indices:
        return []
    if hasattr(source, "__getitems__"):
        return list(source.__getitems__(list(indices)))
    return [source[i] for i in indices]


def eval_batches(
    source: Sequence[Record],
    *,
    batch_size: int,
    buckets: Sequence[int] | None = None,
    process_index: int = 0,
    process_count: int = 1,
    num_threads: int = 2,
    prefetch: int = 2,
) -> Iterator[tuple[dict[str, np.ndarray], list[int]]]:
    """Every video of `source` once, full length, bucketed and padded.

    Args:
      batch_size: the GLOBAL batch size; each process yields batch_size // process_count.
      buckets: padded lengths (sorted; the longest video is added if it does not fit), or
        None for `default_buckets` of the longest video.
    Yields:
      (batch, indices): batch as in `eval_batch`; indices [b] are dataset indices of the
      rows, -1 for padding rows (example_mask False). Buckets come in increasing length.
    """
    if len(source) == 0:
        return iter(())
    lengths = source_lengths(source)
    plan = eval_plan(
        lengths,
        batch_size=batch_size,
        buckets=buckets,
        process_index=process_index,
        process_count=process_count,
    )
    first = source[0]
    dims = (
        int(np.shape(first["visual"])[1]),
        int(np.shape(first["audio"])[1]),
        int(np.shape(first["labels"])[0]),
    )

    def make(step: tuple[int, list[int]]) -> tuple[dict[str, np.ndarray], list[int]]:
        length, indices = step
        return eval_batch(source, indices, length, dims), list(indices)

    return _iterate(grain.MapDataset.source(plan).map(make), num_threads, prefetch)


def num_eval_shapes(lengths: npt.ArrayLike, buckets: Sequence[int] | None = None) -> int:
    """How many distinct padded lengths (compiled eval shapes) a split uses."""
    counts = np.asarray(lengths, np.int64)
    used = np.asarray(resolve_buckets(counts, buckets), np.int64)
    return len(np.unique(np.searchsorted(used, counts, side="left")))


def describe_batch(batch: dict[str, Any]) -> str:
    """'key[shape] ...' for logs."""
    return " ".join(f"{k}{list(np.shape(v))}" for k, v in batch.items())


__all__ = [
    "default_buckets",
    "eval_batch",
    "eval_batches",
    "eval_plan",
    "num_eval_shapes",
    "prefetch_to_device",
    "resolve_buckets",
    "source_lengths",
    "train_batches",
    "train_dataset",
    "train_example",
]
