"""The train state and its update: optimizer, initialisation, the jitted data-parallel
train step, and the device-resident fused chunk of steps."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from avloc_jax import losses
from avloc_jax import model as models
from avloc_jax.common import parallel
from avloc_jax.data import device_data
from avloc_jax.data.records import Dataset
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
        shape = (1, 8)
        params = model.init(
            init_rng,
            jnp.zeros(shape + (meta.visual_dim,)),
            jnp.zeros(shape + (meta.audio_dim,)),
            jnp.ones(shape, bool),
        )["params"]
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


def make_train_step(
    model: models.AVLocModel,
    tx: optax.GradientTransformation,
    loss_config: Any,
    schedule: Any,
    mesh: Any,
):
    """The jitted, data-parallel update: params replicated, batch sharded on axis 0.

    XLA inserts the gradient all-reduce from the shardings; the state is donated, so its
    buffers are updated in place.
    """
    trace_count = [0]

    def train_step(
        state: TrainState, batch: dict[str, jax.Array]
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        trace_count[0] += 1  # runs at trace time only: counts compilations
        dropout_rng = jax.random.fold_in(state.rng, state.step)
        mask = batch["mask"].astype(bool)
        example_weight = jnp.ones(mask.shape[0], jnp.float32)

        def loss_fn(params):
            outputs: Any = model.apply(
                {"params": params},
                batch["visual"],
                batch["audio"],
                mask,
                train=True,
                rngs={"dropout": dropout_rng},
            )
            return losses.total_loss(
                outputs, mask, batch["labels"], example_weight, loss_config, state.step
            )

        (_, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = TrainState(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
            rng=state.rng,
        )
        metrics = {f"loss/{k}": v for k, v in terms.items()}
        metrics["grad_norm"] = optax.global_norm(grads)
        metrics["learning_rate"] = schedule(state.step)
        metrics.update(gate_magnitudes(new_state.params))
        return new_state, metrics

    jitted = jax.jit(
        train_step,
        in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
        out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
        donate_argnums=(0,),
    )
    return train_step, jitted, trace_count


def make_device_resident_chunk(
    train_step: Any,
    data_config: Any,
    batch_size: int,
    seed: int,
    mesh: Any,
    trace_count: list[int] | None = None,
):
    """`num_steps` fused updates over device-resident data: one `lax.fori_loop`, no host
    traffic. Each step builds its batch on device from (seed, step), shards it over the
    mesh, and applies `train_step`; the metrics are the last step's. The trip count is a
    traced value, so one compilation serves every chunk length: log, eval and checkpoint
    intervals that do not divide one another (e.g. 100, 83 and 167) leave gaps of many
    lengths, and a scan compiled per length recompiled for each of them. `trace_count[0]`
    counts the chunk's compilations (`train_step` itself is traced twice per compilation:
    once for the metrics' shapes, once in the loop)."""
    sharding = parallel.batch_sharded(mesh)

    def one_step(state: TrainState, data: dict[str, jax.Array]):
        batch = device_data.sample_batch(
            data,
            state.step,
            batch_size=batch_size,
            num_snippets=data_config.num_snippets,
            sampling=data_config.sampling,
            seed=seed,
        )
        batch = jax.lax.with_sharding_constraint(batch, sharding)
        return train_step(state, batch)

    def chunk(state: TrainState, data: dict[str, jax.Array], num_steps: jax.Array):
        if trace_count is not None:
            trace_count[0] += 1  # runs at trace time only
        _, metric_shapes = jax.eval_shape(one_step, state, data)
        metrics = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

        def body(_, carry):
            return one_step(carry[0], data)

        return jax.lax.fori_loop(0, num_steps, body, (state, metrics))

    jitted = jax.jit(
        chunk,
        in_shardings=(parallel.replicated(mesh), parallel.replicated(mesh), None),
        out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
        donate_argnums=(0,),
    )

    def run(state: TrainState, data: dict[str, jax.Array], num_steps: int):
        if num_steps < 1:
            raise ValueError(f"a device-resident chunk needs at least 1 step, got {num_steps}")
        return jitted(state, data, jnp.asarray(num_steps, jnp.int32))

    return run
