"""Training and evaluation: one readable loop (big_vision style).

`train_and_evaluate(config, workdir)` turns a config into a trained, evaluated model:

  W/config.json            the resolved config
  W/metrics.jsonl          one JSON object per train/eval event (engine/metric_logging.py)
  W/tensorboard/           the same events as TensorBoard scalars (engine/writers.py)
  W/checkpoints/<step>/    orbax checkpoints: the last `train.keep_checkpoints` saves and
                           the best by the validation metric (engine/checkpoints.py)
  W/results/<split>_metrics.json, plus each evaluator's artifacts (<split>_detections.json)

Model selection reads the validation split only: `config.eval.select` names the metric
among those of the evaluators in `config.evals` (evaluation/evaluators.py). The test split
is scored once, at the end, with the best-by-validation parameters. A run that finds a
checkpoint in its workdir resumes from it; SIGTERM saves a checkpoint and exits cleanly.

The pieces live beside this loop: engine/state.py (train state, optimizer, train step),
engine/checkpoints.py, engine/writers.py; they are re-exported here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections

from avloc_jax import model as models
from avloc_jax.common import io, parallel
from avloc_jax.common.progress import ProgressBar
from avloc_jax.data import device_data, input_pipeline
from avloc_jax.data.loading import load_dataset
from avloc_jax.data.metadata_file import write_dataset_metadata
from avloc_jax.data.records import Dataset, Record
from avloc_jax.engine import writers
from avloc_jax.engine.checkpoints import Checkpoints, PreemptionFlag
from avloc_jax.engine.state import (
    TrainState,
    abstract_train_state,
    create_train_state,
    make_device_resident_chunk,
    make_optimizer,
    make_train_step,
)
from avloc_jax.evaluation import evaluators, predict
from configs import default as default_config

__all__ = [
    "Checkpoints",
    "PreemptionFlag",
    "TrainState",
    "abstract_train_state",
    "create_train_state",
    "evaluate_workdir",
    "load_dataset",
    "make_device_resident_chunk",
    "make_optimizer",
    "make_train_step",
    "train_and_evaluate",
]


# ----------------------------------------------------------------------------- evaluation


def make_predict_fn(
    config: ml_collections.ConfigDict, eval_step: Callable, mesh: Any
) -> evaluators.PredictFn:
    """The evaluators' predict function: `predict_fn(params, source) -> {index: outputs}`."""

    def predict_fn(params: Any, source: Sequence[Record]) -> dict[int, predict.VideoOutputs]:
        return predict.collect_outputs(
            eval_step,
            params,
            source,
            batch_size=config.eval.batch_size,
            buckets=tuple(config.data.eval_buckets),
            mesh=mesh,
        )

    return predict_fn


def evaluate_split(
    evals: dict[str, evaluators.Evaluator], dataset: Dataset, split: str, params: Any
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, artifacts) of `params` on `split`, from every configured evaluator."""
    return evaluators.run_evaluators(
        evals, params, dataset.split(split), dataset.metadata, subset=split
    )


def write_results(
    workdir: Path, split: str, metrics: dict, artifacts: dict[str, Any], extra: dict
) -> None:
    """Writes results/<split>_metrics.json and <split>_<artifact>.json, process 0 only."""
    if not parallel.is_main_process():
        return
    results = workdir / "results"
    results.mkdir(parents=True, exist_ok=True)
    io.atomic_write_json(
        results / f"{split}_metrics.json", {"split": split, **extra, "metrics": metrics}
    )
    for name, payload in artifacts.items():
        io.atomic_write_json(results / f"{split}_{name}.json", payload)


# ----------------------------------------------------------------------------- main loop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains per `config` in `workdir` (resuming if possible) and evaluates val and test."""
    default_config.validate(config)  # ConfigError (one line) before anything is written
    # --- Set-up: processes, devices, workdir, writers.
    parallel.maybe_initialize_distributed(config.distributed.initialize)
    workdir = Path(workdir)
    main_process = parallel.is_main_process()
    if main_process:
        workdir.mkdir(parents=True, exist_ok=True)
        io.atomic_write_json(workdir / "config.json", json.loads(config.to_json_best_effort()))
    writer = writers.create_writer(workdir, enabled=main_process)
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
            f"{meta.name}: the validation split is the test split ({meta.test_split!r}); "
            "model selection must not see the test split: set data.val_fraction > 0 to hold "
            "out part of training"
        )
    if main_process:  # class names and feature sizes, for `avloc predict` / `avloc export`
        write_dataset_metadata(workdir, dataset, config)

    # --- Model, optimizer, state.
    model = models.build_model(config.model, meta.num_classes)
    tx, schedule = make_optimizer(config.train)
    state = create_train_state(model, tx, dataset, config.seed, parallel.replicated(mesh))
    logging.info("parameters: %d", parallel.tree_size(state.params))

    # --- Evaluators and the metric that selects the checkpoint.
    eval_traces = [0]
    eval_step = predict.make_eval_step(model, config.loss.topk_ratio, mesh, trace_count=eval_traces)
    evals = evaluators.build_evaluators(make_predict_fn(config, eval_step, mesh), config, meta)
    select = evaluators.selection_metric(config, evals)

    # --- Checkpoints: resume if the workdir has one.
    checkpoints = Checkpoints(workdir / "checkpoints", config.train.keep_checkpoints)
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
    train_source = dataset.split(meta.train_split)
    if config.data.device_resident:
        # The whole split on the devices; runs of steps between events fuse into one scan.
        device_split = jax.device_put(
            device_data.stack_split(train_source), parallel.replicated(mesh)
        )
        # Compilations are counted per chunk (one for every chunk length), not per trace of
        # the step inside it.
        train_traces = [0]
        chunk_fn = make_device_resident_chunk(
            train_step, config.data, config.train.batch_size, config.seed, mesh, train_traces
        )

        def run_steps(state: TrainState, count: int) -> tuple[TrainState, Any]:
            return chunk_fn(state, device_split, count)

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
        # The next global batches are copied to the devices while the current step runs.
        device_batches = input_pipeline.prefetch_to_device(batches, parallel.batch_sharded(mesh))

        def run_steps(state: TrainState, count: int) -> tuple[TrainState, Any]:
            return jitted_train_step(state, next(device_batches))

    log_every = config.train.log_every_steps
    eval_every = config.eval.every_steps
    checkpoint_every = config.train.checkpoint_every_steps

    def due(step: int, every: int) -> bool:
        return step % every == 0 or step == num_steps

    # --- Periodic actions. Not PeriodicCallback for the log / eval / checkpoint events:
    # with every_steps it must be called after every single step, and device-resident
    # runs advance by fused chunks; `due` above says it for both.
    report_progress = writers.periodic_actions.ReportProgress(
        num_train_steps=num_steps, every_secs=60.0
    )
    hooks: list[Callable[[int], Any]] = [report_progress]
    profile_steps = int(config.train.profile_steps)
    if profile_steps > 0 and main_process:
        # One trace, from the first log step of this run on (past the compilation).
        hooks.append(
            writers.periodic_actions.Profile(
                logdir=workdir / "profile",
                num_profile_steps=profile_steps,
                profile_duration_ms=None,
                first_profile=(start_step // log_every + 1) * log_every,
                every_secs=None,
            )
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
                _steps_to_next_event(step, num_steps, (log_every, eval_every, checkpoint_every))
                if config.data.device_resident
                else 1
            )
            state, metrics = run_steps(state, count)
            step += count
            window_steps += count
            progress.update(count)
            for hook in hooks:
                hook(step)

            if preemption.reached(step, checkpoints):
                checkpoints.save(state)
                checkpoints.close()
                writer.write_scalars(step, {"event": "preempted"})
                writer.close()
                logging.warning("stopped at step %d; rerun the same command to resume", step)
                return {**outcome, "preempted": True, "step": step}

            if due(step, log_every):
                metrics = jax.device_get(metrics)
                elapsed = time.perf_counter() - window_start
                metrics["steps_per_sec"] = window_steps / elapsed
                metrics["videos_per_sec"] = window_steps * config.train.batch_size / elapsed
                metrics["train_compilations"] = train_traces[0]
                writer.write_scalars(step, {"event": "train", **metrics})
                progress.set_postfix(loss=float(metrics["loss/total"]))
                window_start, window_steps = time.perf_counter(), 0

            if due(step, eval_every):
                with report_progress.timed("eval", wait_jax_async_dispatch=False):
                    val_metrics, _ = evaluate_split(evals, dataset, meta.val_split, state.params)
                value = evaluators.check_selection(select, val_metrics, evals)
                improved = checkpoints.save(state, value)
                # Compiled eval shapes so far: one per length bucket met (docs/data.md).
                writer.write_scalars(
                    step,
                    {
                        "event": "eval",
                        "split": meta.val_split,
                        "is_best": improved,
                        "eval_compilations": eval_traces[0],
                        **val_metrics,
                    },
                )
                progress.set_postfix(**{f"val_{select}": value})
                window_start, window_steps = time.perf_counter(), 0  # eval is not train time

            if due(step, checkpoint_every):
                checkpoints.save(state)

    # --- Final evaluation: best-by-val parameters on val, then test once.
    best = checkpoints.restore("best", state)
    final_state = best if best is not None else state
    checkpoints.close()
    outcome["best_step"] = int(final_state.step)
    for role, split in (("val", meta.val_split), ("test", meta.test_split)):
        split_metrics, artifacts = evaluate_split(evals, dataset, split, final_state.params)
        extra = {"step": int(final_state.step), "checkpoint": "best"}
        write_results(workdir, split, split_metrics, artifacts, extra)
        writer.write_scalars(
            int(final_state.step), {"event": "final", "split": split, **split_metrics}
        )
        outcome[role] = split_metrics
    writer.close()
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
    split = meta.resolve_split(split)
    model = models.build_model(config.model, meta.num_classes)
    template = abstract_train_state(config, meta, mesh)
    checkpoints = Checkpoints(workdir / "checkpoints", config.train.keep_checkpoints)
    state = checkpoints.restore(checkpoint, template)
    checkpoints.close()
    if state is None:
        raise FileNotFoundError(f"no {checkpoint!r} checkpoint under {workdir / 'checkpoints'}")
    eval_step = predict.make_eval_step(model, config.loss.topk_ratio, mesh)
    evals = evaluators.build_evaluators(make_predict_fn(config, eval_step, mesh), config, meta)
    metrics, artifacts = evaluate_split(evals, dataset, split, state.params)
    extra = {"step": int(state.step), "checkpoint": checkpoint}
    write_results(workdir, split, metrics, artifacts, extra)
    return metrics
