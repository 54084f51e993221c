"""The train state: what a checkpoint holds, its initialisation and its abstract shape.

The steps that update it are engine/steps.py's; the optimizer is avloc_jax/optimizer.py's.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from avloc_jax import model as models
from avloc_jax.common import parallel
from avloc_jax.data.records import Dataset
from avloc_jax.model.inputs import init_params
from avloc_jax.optimizer import make_optimizer


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # number of optimizer updates applied
    params: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 key; dropout uses fold_in(rng, step), so resumes are exact


def create_train_state(
    model: models.AVLocModel,
    tx: optax.GradientTransformation,
    dataset: Dataset,
    seed: int,
    sharding: Any,
) -> TrainState:
    meta = dataset.metadata

    def init() -> TrainState:
        rng = jax.random.PRNGKey(seed)
        init_rng, train_rng = jax.random.split(rng)
        params = init_params(model, init_rng, meta.visual_dim, meta.audio_dim)
        return TrainState(
            step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=train_rng
        )

    return jax.jit(init, out_shardings=sharding)()


def abstract_train_state(config: ml_collections.ConfigDict, metadata: Any, mesh: Any) -> TrainState:
    """The train state's shapes, dtypes and (replicated) shardings, computed without
    initialising anything: the target structure for restoring a checkpoint."""
    model = models.build_model(config.model, metadata.num_classes)
    tx, _ = make_optimizer(config.train)
    sharding = parallel.replicated(mesh)
    shapes = jax.eval_shape(
        lambda: create_train_state(model, tx, Dataset(metadata, {}), config.seed, sharding)
    )
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


GATE_PREFIX = "gate/"


def gate_magnitudes(params: Any) -> dict[str, jax.Array]:
    """``gate/{audio,visual}_{stage}`` -> mean |g| of that attention gate (float32 scalar),
    for every gate the model has (none for ungated or non-attention models). How far the
    gates open over training is the gate dynamics of docs/results.md."""
    fusion = params.get("fusion", {}) if hasattr(params, "get") else {}
    magnitudes = {}
    for name, value in fusion.items():
        modality, _, stage = name.rpartition("_gate_")
        if modality in ("audio", "visual") and stage.isdigit():
            magnitudes[f"{GATE_PREFIX}{modality}_{stage}"] = jnp.mean(
                jnp.abs(value.astype(jnp.float32))
            )
    return dict(sorted(magnitudes.items()))
