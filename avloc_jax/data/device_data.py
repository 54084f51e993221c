"""Device-resident training data, for datasets that fit in device memory (AVE, the demo).

The whole training split is padded to its longest video and kept on the devices
(replicated). The batch for global step s is computed on device as a pure function of
(seed, s): an epoch-wise permutation picks the videos, then fixed-length snippet sampling
picks the snippets. Several steps then fuse into one `lax.scan` with no host-device
traffic, and a resumed run sees exactly the batches it would have seen.

The global batch does not depend on the device count; the train step shards it over the
mesh with a sharding constraint, so the result is the same on 1 or 8 devices.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from avloc_jax.data import sampling as sampling_rule
from avloc_jax.data.records import Record


def stack_split(source: Sequence[Record]) -> dict[str, np.ndarray]:
    """Pads every video to the split's longest: visual [N, T, Dv], audio [N, T, Da],
    mask [N, T], labels [N, C]."""
    if len(source) == 0:
        raise ValueError("device-resident mode needs a non-empty training split")
    records = [source[i] for i in range(len(source))]
    max_len = max(len(r["visual"]) for r in records)
    first = records[0]
    out = {
        "visual": np.zeros((len(records), max_len, first["visual"].shape[-1]), np.float32),
        "audio": np.zeros((len(records), max_len, first["audio"].shape[-1]), np.float32),
        "mask": np.zeros((len(records), max_len), bool),
        "labels": np.stack([np.asarray(r["labels"], np.float32) for r in records]),
    }
    for i, record in enumerate(records):
        length = len(record["visual"])
        out["visual"][i, :length] = record["visual"]
        out["audio"][i, :length] = record["audio"]
        out["mask"][i, :length] = True
    return out


def sample_batch(
    data: dict[str, jax.Array],
    step: jax.Array,
    *,
    batch_size: int,
    num_snippets: int,
    sampling: str,
    seed: int,
) -> dict[str, jax.Array]:
    """The global training batch of `step` (traceable; no host work).

    Videos: permutation of epoch ⌊step / steps_per_epoch⌋, consecutive slices of it.
    Snippets: the host pipeline's rule and code (`avloc_jax.data.sampling.sample_snippets`,
    here with jax.numpy, vmapped over the batch, and numbers from jax.random): a video
    longer than L = `sampling.train_length(num_snippets, longest)` keeps L of its valid
    snippets in temporal order ("random", "uniform" or "crop"); shorter videos keep all
    and are padded.
    """
    num_videos, max_len = data["mask"].shape
    steps_per_epoch = max(num_videos // batch_size, 1)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 7919)  # a stream apart from init/dropout
    epoch, position = step // steps_per_epoch, step % steps_per_epoch
    order = jax.random.permutation(jax.random.fold_in(key, epoch), num_videos)
    indices = jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)
    batch = jax.tree.map(lambda x: x[indices], data)

    sample_key = jax.random.fold_in(jax.random.fold_in(key, 104729), step)
    keys = dict(zip(("scores", "offset"), jax.random.split(sample_key)))
    # Only the numbers the mode takes, one row per video, as the host draws them per video.
    uniforms = {
        name: jax.random.uniform(keys[name], (batch_size,) + shape)
        for name, shape in sampling_rule.uniform_shapes(sampling, max_len).items()
    }
    length = sampling_rule.train_length(num_snippets, max_len)
    sampled = jax.vmap(
        lambda video, n, u: sampling_rule.sample_snippets(jnp, video, n, length, sampling, u)
    )(
        {"visual": batch["visual"], "audio": batch["audio"]},
        batch["mask"].sum(axis=1),
        uniforms,
    )
    return {**sampled, "labels": batch["labels"]}
