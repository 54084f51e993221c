"""The jitted steps of a run: the train step, the eval step, and where training batches
come from (the one call of the snippet sampler).

  make_train_step            the data-parallel update (params replicated, batch sharded,
                             state donated)
  make_device_resident_chunk many updates fused into one jitted loop over on-device data
  make_steps                 the run's steps, built once by the loop (engine/train.py):
                             `Steps.train(state, count)` advances `count` updates with
                             batches from the host pipeline or from device-resident data,
                             `Steps.eval` is the forward pass the evaluators use

Both data paths sample snippets by avloc_jax/data/sampling.py's one rule; which path a
run takes is `data.device_resident`, decided here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from avloc_jax import losses
from avloc_jax.common import parallel
from avloc_jax.data import device_data, input_pipeline
from avloc_jax.data.records import Record
from avloc_jax.engine.state import TrainState, gate_magnitudes
from avloc_jax.evaluation import predict

Metrics = dict[str, jax.Array]


def make_train_step(
    model: Any, tx: optax.GradientTransformation, loss_config: Any, schedule: Any, mesh: Any
) -> tuple[Callable, Callable, list[int]]:
    """(train_step, its jitted data-parallel form, its trace count).

    `train_step(state, batch) -> (state, metrics)`: one AdamW update on
    `losses.total_loss` (the terms of `loss_config`, i.e. `config.loss`). The jitted form
    takes the params replicated and the batch sharded on axis 0 (XLA inserts the gradient
    all-reduce) and donates the state, so its buffers are updated in place.
    `trace_count[0]` counts its traces, i.e. compilations.
    """
    trace_count = [0]

    def train_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, Metrics]:
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
    train_step: Callable,
    *,
    batch_size: int,
    num_snippets: int,
    sampling: str,
    seed: int,
    mesh: Any,
    trace_count: list[int] | None = None,
) -> Callable[[TrainState, dict[str, jax.Array], int], tuple[TrainState, Metrics]]:
    """`run(state, data, num_steps)`: `num_steps` fused updates over device-resident data,
    one `lax.fori_loop` with no host traffic. Each step builds its batch on device from
    (seed, step) (`device_data.sample_batch`), shards it over the mesh and applies
    `train_step`; the metrics are the last step's. The trip count is a traced value, so
    one compilation serves every chunk length: log, eval and checkpoint intervals that
    do not divide one another (e.g. 100, 83 and 167) leave gaps of many lengths, and a
    scan compiled per length recompiled for each of them. `trace_count[0]` counts the
    chunk's compilations (`train_step` itself is traced twice per compilation: once for
    the metrics' shapes, once in the loop)."""
    sharding = parallel.batch_sharded(mesh)

    def one_step(state: TrainState, data: dict[str, jax.Array]):
        batch = device_data.sample_batch(
            data,
            state.step,
            batch_size=batch_size,
            num_snippets=num_snippets,
            sampling=sampling,
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


@dataclasses.dataclass
class Steps:
    """The steps of one run (`make_steps`).

    train: `(state, count) -> (state, metrics)`, `count` updates (1 unless `fused`).
    fused: device-resident data: one call may run any number of updates, so the loop
      runs every update up to its next event in one call.
    eval: the jitted forward pass of the evaluators (`predict.make_eval_step`).
    train_compilations / eval_compilations: `[count]` of compilations so far (a chunk
      length or a train step; an eval length bucket).
    """

    train: Callable[[TrainState, int], tuple[TrainState, Metrics]]
    fused: bool
    eval: Callable
    train_compilations: list[int]
    eval_compilations: list[int]


def make_steps(
    model: Any,
    tx: optax.GradientTransformation,
    schedule: Any,
    mesh: Any,
    *,
    loss_config: Any,
    train_source: Sequence[Record],
    batch_size: int,
    num_snippets: int,
    sampling: str,
    device_resident: bool,
    seed: int,
    start_step: int,
) -> Steps:
    """The run's train and eval steps, with training batches from step `start_step` on.

    Batches (global `batch_size` videos of `num_snippets` snippets, `sampling` mode, all
    from `seed`): with `device_resident`, the whole split is copied to the devices and
    sampled there, inside fused chunks of steps; otherwise the host pipeline
    (`input_pipeline.train_batches`, grain) samples them, each process its slice, and they
    are copied to the devices while the previous step runs. Both resume exactly at
    `start_step`. `loss_config` (`config.loss`) gives the train step its loss terms and
    the eval step its top-k ratio."""
    train_step, jitted_train_step, train_traces = make_train_step(
        model, tx, loss_config, schedule, mesh
    )
    eval_traces = [0]
    eval_step = predict.make_eval_step(model, loss_config.topk_ratio, mesh, trace_count=eval_traces)
    if device_resident:
        # The whole split on the devices; runs of steps between events fuse into one call.
        data = jax.device_put(device_data.stack_split(train_source), parallel.replicated(mesh))
        # Compilations are counted per chunk (one for every chunk length), not per trace
        # of the step inside it.
        train_traces = [0]
        chunk = make_device_resident_chunk(
            train_step,
            batch_size=batch_size,
            num_snippets=num_snippets,
            sampling=sampling,
            seed=seed,
            mesh=mesh,
            trace_count=train_traces,
        )
        return Steps(
            train=lambda state, count: chunk(state, data, count),
            fused=True,
            eval=eval_step,
            train_compilations=train_traces,
            eval_compilations=eval_traces,
        )
    batches = input_pipeline.train_batches(
        train_source,
        batch_size=batch_size,  # global; each process yields its slice
        seed=seed,
        num_snippets=num_snippets,
        sampling=sampling,
        start_step=start_step,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    device_batches = input_pipeline.prefetch_to_device(batches, parallel.batch_sharded(mesh))

    def train(state: TrainState, count: int) -> tuple[TrainState, Metrics]:
        if count != 1:
            raise ValueError(f"host-fed training runs one step per call, got {count}")
        return jitted_train_step(state, next(device_batches))

    return Steps(
        train=train,
        fused=False,
        eval=eval_step,
        train_compilations=train_traces,
        eval_compilations=eval_traces,
    )
