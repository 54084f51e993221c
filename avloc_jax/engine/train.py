"""Training and evaluation: one readable loop (big_vision style).

`train_and_evaluate(config, workdir)` turns a config into a trained, evaluated model:

  W/config.json            the resolved config
  W/metrics.jsonl          one JSON object per train/eval event (metric_logging)
  W/checkpoints/last/      periodic orbax checkpoints, the last `train.keep_checkpoints`
  W/checkpoints/best/      the best checkpoint by the validation metric
  W/results/<split>_metrics.json, and <split>_detections.json for untrimmed datasets

Model selection reads the validation split only; the test split is scored once, at the
end, with the best-by-validation parameters. A run that finds a checkpoint in its workdir
resumes from it; SIGTERM saves a checkpoint and exits cleanly.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
import orbax.checkpoint as ocp

from avloc_jax import losses
from avloc_jax.common import parallel
from avloc_jax.common.progress import ProgressBar
from avloc_jax.data import device_data, input_pipeline
from avloc_jax.data.loading import load_dataset
from avloc_jax.data.metadata_file import write_dataset_metadata
from avloc_jax.data.records import Dataset
from avloc_jax.engine.metric_logging import MetricLogger
from avloc_jax.engine.tensorboard_writer import TensorBoardWriter
from avloc_jax.evaluation import evaluators as evaluation
from avloc_jax.evaluation import predict
from avloc_jax.model import models
from configs import default as default_config


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # number of optimizer updates applied
    params: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 key; dropout uses fold_in(rng, step), so resumes are exact


# ----------------------------------------------------------------------------- data


# ----------------------------------------------------------------------------- model


def make_optimizer(
    train_config: ml_collections.ConfigDict,
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """AdamW with linear warm-up, then cosine decay or a constant rate; global-norm clipping."""
    peak, warmup, total = (
        train_config.learning_rate,
        train_config.warmup_steps,
        train_config.num_steps,
    )
    if train_config.schedule == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, peak, max(warmup, 1), max(total, warmup + 1)
        )
    elif train_config.schedule == "constant":
        schedule = optax.join_schedules(
            [optax.linear_schedule(0.0, peak, max(warmup, 1)), optax.constant_schedule(peak)],
            [max(warmup, 1)],
        )
    else:
        raise ValueError(
            f"train.schedule must be 'cosine' or 'constant', got {train_config.schedule!r}"
        )
    transforms = []
    if train_config.grad_clip_norm:
        transforms.append(optax.clip_by_global_norm(train_config.grad_clip_norm))
    transforms.append(optax.adamw(schedule, weight_decay=train_config.weight_decay))
    return optax.chain(*transforms), schedule


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
            outputs = model.apply(
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
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
        )
        metrics = {f"loss/{k}": v for k, v in terms.items()}
        metrics["grad_norm"] = optax.global_norm(grads)
        metrics["learning_rate"] = schedule(state.step)
        return new_state, metrics

    jitted = jax.jit(
        train_step,
        in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
        out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
        donate_argnums=(0,),
    )
    return train_step, jitted, trace_count


def make_device_resident_chunk(
    train_step: Any, data_config: Any, batch_size: int, seed: int, mesh: Any
):
    """`num_steps` fused updates over device-resident data: one `lax.scan`, no host
    traffic. Each step builds its batch on device from (seed, step), shards it over the
    mesh, and applies `train_step`. Compiled once per distinct chunk length."""
    sharding = parallel.batch_sharded(mesh)

    def chunk(state: TrainState, data: dict[str, jax.Array], num_steps: int):
        def body(state, _):
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

        state, metrics = jax.lax.scan(body, state, length=num_steps)
        return state, jax.tree.map(lambda x: x[-1], metrics)

    return jax.jit(
        chunk,
        static_argnums=(2,),
        in_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
        out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
        donate_argnums=(0,),
    )


# ----------------------------------------------------------------------------- checkpoints


class Checkpoints:
    """Two orbax CheckpointManagers: the last N periodic saves, and the best by val."""

    def __init__(self, directory: Path, keep: int, metric_name: str):
        self.metric_name = metric_name
        self.last = ocp.CheckpointManager(
            (directory / "last").absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )
        self.best = ocp.CheckpointManager(
            (directory / "best").absolute(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1, best_fn=lambda m: m[metric_name], best_mode="max", create=True
            ),
        )
        # Kept in memory: reading metrics back from orbax races with its async saves.
        best_step = self.best.best_step()
        self._best_value = (
            None if best_step is None else float(self.best.metrics(best_step)[metric_name])
        )

    def save_last(self, state: TrainState, force: bool = False) -> None:
        self.last.save(int(state.step), args=ocp.args.StandardSave(state), force=force)

    def save_if_best(self, state: TrainState, metric: float) -> bool:
        """Saves when `metric` beats every earlier val metric (ties keep the earlier one)."""
        if self._best_value is not None and not metric > self._best_value:
            return False
        self.best.save(
            int(state.step),
            args=ocp.args.StandardSave(state),
            metrics={self.metric_name: float(metric)},
            force=True,
        )
        self._best_value = float(metric)
        return True

    def restore(self, which: str, template: TrainState) -> TrainState | None:
        manager = self.last if which == "last" else self.best
        step = manager.latest_step() if which == "last" else manager.best_step()
        if step is None:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        return manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        for manager in (self.last, self.best):
            manager.wait_until_finished()
            manager.close()


class PreemptionFlag:
    """Set by SIGTERM; the loop saves a checkpoint and returns at the next step."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: preemption handling is the caller's
            self._previous = None
        return self

    def _handle(self, signum, frame):
        logging.warning("SIGTERM received: saving a checkpoint and stopping")
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


# ----------------------------------------------------------------------------- evaluation


def evaluate_split(
    config: ml_collections.ConfigDict,
    dataset: Dataset,
    split: str,
    params: Any,
    eval_step: Any,
    mesh: Any,
) -> tuple[dict[str, float], dict | None, dict]:
    """(metrics, detections or None, per-video outputs) of `params` on `split`."""
    source = dataset.split(split)
    outputs = predict.collect_outputs(
        eval_step,
        params,
        source,
        batch_size=config.eval.batch_size,
        buckets=tuple(config.data.eval_buckets),
        mesh=mesh,
    )
    metrics, detections = evaluation.split_metrics(
        outputs, source, dataset.metadata, config, subset=split
    )
    return metrics, detections, outputs


def write_results(
    workdir: Path, split: str, metrics: dict, detections: dict | None, extra: dict
) -> None:
    """Writes results/<split>_metrics.json (and detections) atomically, process 0 only."""
    if not parallel.is_main_process():
        return
    results = workdir / "results"
    results.mkdir(parents=True, exist_ok=True)
    payload = {"split": split, **extra, "metrics": metrics}
    _atomic_write_json(results / f"{split}_metrics.json", payload)
    if detections is not None:
        _atomic_write_json(results / f"{split}_detections.json", detections)


def _atomic_write_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


# ----------------------------------------------------------------------------- main loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains per `config` in `workdir` (resuming if possible) and evaluates val and test."""
    default_config.validate(config)  # ConfigError (one line) before anything is written
    # --- Set-up: processes, devices, workdir.
    parallel.maybe_initialize_distributed(config.distributed.initialize)
    workdir = Path(workdir)
    main_process = parallel.is_main_process()
    if main_process:
        workdir.mkdir(parents=True, exist_ok=True)
        _atomic_write_json(workdir / "config.json", json.loads(config.to_json_best_effort()))
    logger = MetricLogger(workdir, enabled=main_process)
    if main_process:
        logger.add_writer(TensorBoardWriter(workdir / "tensorboard"))
    mesh = parallel.make_mesh()
    parallel.local_batch_size(config.train.batch_size, "train.batch_size")  # checks divisibility
    logging.info(
        "devices: %d (%d processes), global batch %d",
        jax.device_count(),
        jax.process_count(),
        config.train.batch_size,
    )

    # --- Data.
    dataset = load_dataset(config)
    meta = dataset.metadata
    if meta.val_split == meta.test_split:
        raise ValueError(
            f"{meta.name}: the validation split is the test split ({meta.test_split!r}); model selection "
            "must not see the test split: set data.val_fraction > 0 to hold out part of training"
        )
    metric_name = evaluation.selection_metric_name(meta)
    if main_process:  # class names and feature sizes, for `avloc predict` / `avloc export`
        write_dataset_metadata(workdir, dataset, config)

    # --- Model, optimizer, state.
    model = models.build_model(config.model, meta.num_classes)
    tx, schedule = make_optimizer(config.train)
    state = create_train_state(model, tx, dataset, config.seed, parallel.replicated(mesh))
    logging.info("parameters: %d", parallel.tree_size(state.params))

    # --- Checkpoints: resume if the workdir has one.
    checkpoints = Checkpoints(workdir / "checkpoints", config.train.keep_checkpoints, metric_name)
    restored = checkpoints.restore("last", state)
    if restored is not None:
        state = restored
        logging.info("resumed from step %d", int(state.step))
    start_step = int(state.step)

    # --- Steps and data.
    num_steps = config.train.num_steps
    train_step, jitted_train_step, train_traces = make_train_step(
        model, tx, config.loss, schedule, mesh
    )
    eval_step = predict.make_eval_step(model, config.loss.topk_ratio, mesh)
    train_source = dataset.split(meta.train_split)
    if config.data.device_resident:
        # The whole split on the devices; runs of steps between events fuse into one scan.
        device_split = jax.device_put(
            device_data.stack_split(train_source), parallel.replicated(mesh)
        )
        chunk_fn = make_device_resident_chunk(
            train_step, config.data, config.train.batch_size, config.seed, mesh
        )
        run_steps = lambda state, count: chunk_fn(state, device_split, count)  # noqa: E731
    else:
        batches = input_pipeline.train_batches(
            train_source,
            batch_size=config.train.batch_size,  # global; each process yields its slice
            seed=config.seed,
            num_snippets=config.data.num_snippets,
            sampling=config.data.sampling,
            start_step=start_step,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        )
        data_sharding = parallel.batch_sharded(mesh)
        run_steps = lambda state, count: jitted_train_step(
            state, parallel.to_global(next(batches), data_sharding)
        )  # noqa: E731
    event_every = (
        config.train.log_every_steps,
        config.eval.every_steps,
        config.train.checkpoint_every_steps,
    )

    # --- Train loop.
    outcome: dict[str, Any] = {"start_step": start_step}
    window_start, window_steps = time.perf_counter(), 0
    step = start_step
    progress = ProgressBar(
        num_steps, initial=start_step, desc="train", enabled=None if main_process else False
    )
    with PreemptionFlag() as preemption, progress:
        while step < num_steps:
            # Host-fed data: one step at a time. Device-resident: every step up to the next event.
            count = (
                _steps_to_next_event(step, num_steps, event_every)
                if config.data.device_resident
                else 1
            )
            state, metrics = run_steps(state, count)
            step += count
            window_steps += count
            progress.update(count)

            if parallel.any_process(preemption.requested):
                checkpoints.save_last(state, force=True)
                checkpoints.close()
                logger.write("preempted", step, {})
                logger.close()
                logging.warning("stopped at step %d; rerun the same command to resume", step)
                return {**outcome, "preempted": True, "step": step}

            if step % config.train.log_every_steps == 0 or step == num_steps:
                metrics = jax.device_get(metrics)
                elapsed = time.perf_counter() - window_start
                metrics["steps_per_sec"] = window_steps / elapsed
                metrics["videos_per_sec"] = window_steps * config.train.batch_size / elapsed
                metrics["train_compilations"] = train_traces[0]
                logger.write("train", step, metrics)
                progress.set_postfix(loss=float(metrics["loss/total"]))
                logging.info("step %d: loss %.4f", step, metrics["loss/total"])
                window_start, window_steps = time.perf_counter(), 0

            if step % config.eval.every_steps == 0 or step == num_steps:
                val_metrics, _, _ = evaluate_split(
                    config, dataset, meta.val_split, state.params, eval_step, mesh
                )
                improved = checkpoints.save_if_best(state, val_metrics[metric_name])
                # Compiled eval shapes so far: one per length bucket met (docs/data.md).
                compiled = (
                    {"eval_compilations": eval_step._cache_size()}
                    if hasattr(eval_step, "_cache_size")
                    else {}
                )
                logger.write(
                    "eval",
                    step,
                    {"split": meta.val_split, "is_best": improved, **compiled, **val_metrics},
                )
                progress.set_postfix(**{f"val_{metric_name}": val_metrics[metric_name]})
                logging.info("step %d: val %s = %.4f", step, metric_name, val_metrics[metric_name])
                window_start, window_steps = (
                    time.perf_counter(),
                    0,
                )  # eval time is not train throughput

            if step % config.train.checkpoint_every_steps == 0 or step == num_steps:
                checkpoints.save_last(state)

    # --- Final evaluation: best-by-val parameters on val, then test once.
    best = checkpoints.restore("best", state)
    final_state = best if best is not None else state
    checkpoints.close()
    outcome["best_step"] = int(final_state.step)
    for role, split in (("val", meta.val_split), ("test", meta.test_split)):
        split_metrics, detections, _ = evaluate_split(
            config, dataset, split, final_state.params, eval_step, mesh
        )
        write_results(
            workdir,
            split,
            split_metrics,
            detections,
            {"step": int(final_state.step), "checkpoint": "best"},
        )
        logger.write("final", int(final_state.step), {"split": split, **split_metrics})
        outcome[role] = split_metrics
    logger.close()
    return outcome


def _steps_to_next_event(step: int, num_steps: int, intervals: tuple[int, ...]) -> int:
    """Steps from `step` to the next multiple of any interval (or to the end)."""
    targets = [num_steps] + [(step // every + 1) * every for every in intervals if every > 0]
    return min(targets) - step


def evaluate_workdir(
    config: ml_collections.ConfigDict, workdir: str | Path, split: str, checkpoint: str = "best"
) -> dict[str, float]:
    """`avloc evaluate`: scores a trained workdir's checkpoint on one split."""
    parallel.maybe_initialize_distributed(config.distributed.initialize)
    workdir = Path(workdir)
    mesh = parallel.make_mesh()
    dataset = load_dataset(config)
    meta = dataset.metadata
    split = {"val": meta.val_split, "test": meta.test_split, "train": meta.train_split}.get(
        split, split
    )
    model = models.build_model(config.model, meta.num_classes)
    template = abstract_train_state(config, meta, mesh)
    checkpoints = Checkpoints(
        workdir / "checkpoints",
        config.train.keep_checkpoints,
        evaluation.selection_metric_name(meta),
    )
    state = checkpoints.restore(checkpoint, template)
    checkpoints.close()
    if state is None:
        raise FileNotFoundError(f"no {checkpoint!r} checkpoint under {workdir / 'checkpoints'}")
    eval_step = predict.make_eval_step(model, config.loss.topk_ratio, mesh)
    metrics, detections, _ = evaluate_split(config, dataset, split, state.params, eval_step, mesh)
    write_results(
        workdir, split, metrics, detections, {"step": int(state.step), "checkpoint": checkpoint}
    )
    return metrics
