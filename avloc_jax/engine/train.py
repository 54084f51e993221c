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

Nothing is written before every input is checked: the config (`validate`), the workdir's
saved config against it (`check_resume`: a workdir holds one run) and the dataset; a
problem with any of them is a one-line `ConfigError` naming the key or file, and the
workdir is left as it was (not even created). The few lines a user sees by default go to
`common.progress.run_log` (the run in one line, one line per validation, the result);
the rest of the log is INFO detail (`log_file`: the workdir's log, common/workdir.py).

The pieces live beside this loop: engine/state.py (train state, optimizer, train step),
engine/checkpoints.py, engine/writers.py; they are re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections

from avloc_jax import model as models
from avloc_jax import schema
from avloc_jax.common import config_checks, config_migration, io, parallel
from avloc_jax.common.config_checks import ConfigError
from avloc_jax.common.progress import ProgressBar, run_log
from avloc_jax.common.workdir import Workdir
from avloc_jax.data import device_data, input_pipeline
from avloc_jax.data.annotations import DataError
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

__all__ = [
    "Checkpoints",
    "PreemptionFlag",
    "TrainState",
    "abstract_train_state",
    "check_resume",
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
    layout = Workdir(workdir)
    layout.results_dir.mkdir(parents=True, exist_ok=True)
    io.atomic_write_json(
        layout.results_path(split, "metrics"), {"split": split, **extra, "metrics": metrics}
    )
    for name, payload in artifacts.items():
        io.atomic_write_json(layout.results_path(split, name), payload)


# ----------------------------------------------------------------------------- checks

# The keys a resumed run may change (with resume_with_more_steps); see check_resume.
GROWABLE = ("train.num_steps",)


def check_resume(
    config: ml_collections.ConfigDict, workdir: str | Path, *, resume_with_more_steps: bool = False
) -> list[tuple[str, Any, Any]]:
    """Whether `config` may train in `workdir`; raises ConfigError if not. Writes nothing.

    A workdir holds one run: its config.json is the config of its checkpoints and
    metrics. A workdir without config.json (new or empty) takes any config; one with it
    takes the same config, which is how a preempted run resumes. Both sides are compared
    as their JSON after `config_migration` (an older saved config gets the keys added
    since, with the values that reproduce it; tuples equal lists), without data.demo
    unless the data is the demo (validate's rule). Any other config is refused with one
    line naming every differing key, with its saved and its given value.

    `resume_with_more_steps` (`avloc train --resume_with_more_steps`) lets one key differ:
    `train.num_steps`, and only upwards, to train a finished or preempted run further.
    Every other key stays refused, because each changes what the workdir's checkpoints
    and metrics mean: the data, model, loss, optimizer and seed change what is trained;
    eval.every_steps which steps compete for the best checkpoint; keep_checkpoints which
    checkpoints exist; the log and checkpoint intervals where device-resident runs cut
    their fused chunks (results move in the last float bits). Growing num_steps is not
    a fresh run of the new length either: the learning-rate schedule (cosine by
    default) is recomputed over the new total, so the rate rises again from where the
    shorter schedule had brought it; config.json then records the new total.

    Returns the allowed differences (empty unless num_steps grew with the flag)."""
    path = Workdir(workdir).config_path
    if not path.exists():
        return []
    try:  # migrated, then validated like the given config; errors name the path
        saved = Workdir(workdir).read_config(validate=schema.validate)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{err}; expected the config saved by `avloc train`") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror})") from None
    given = config_migration.migrate(json.loads(config.to_json_best_effort()))
    if saved.get("data", {}).get("name") != "demo" and given["data"]["name"] != "demo":
        # data.demo is read only for the demo; older configs of other datasets lack it.
        for side in (saved, given):
            side.get("data", {}).pop("demo", None)
    found = config_checks.differences(saved, given)
    if not found:
        return []

    def grows(key: str, old: Any, new: Any) -> bool:
        return (
            key in GROWABLE
            and all(isinstance(v, int) and not isinstance(v, bool) for v in (old, new))
            and new > old
        )

    refused = [d for d in found if not (resume_with_more_steps and grows(*d))]
    if not refused:
        return found
    listed = ", ".join(f"{key} (saved {old!r}, given {new!r})" for key, old, new in refused)
    if resume_with_more_steps:
        hint = "--resume_with_more_steps lets only train.num_steps grow"
    elif all(grows(*d) for d in refused):
        hint = "pass --resume_with_more_steps to train the saved run to more steps"
    else:
        hint = "use another --workdir, or the saved config to resume"
    raise ConfigError(f"{path}: the saved config differs: {listed}; {hint}")


def _load_checked_dataset(config: ml_collections.ConfigDict) -> Dataset:
    """The config's dataset; ConfigError (naming the key) if it is missing or unreadable,
    or if its validation split is its test split."""
    try:
        dataset = load_dataset(config)
    except (OSError, DataError) as err:
        raise ConfigError(f"data.data_dir: {err}") from None
    meta = dataset.metadata
    if meta.val_split == meta.test_split:
        raise ConfigError(
            f"data.val_fraction: {meta.name}: the validation split is the test split "
            f"({meta.test_split!r}); model selection must not see the test split: set "
            "data.val_fraction > 0 to hold out part of training"
        )
    return dataset


@contextlib.contextmanager
def _log_to_file(path: Path | None) -> Iterator[None]:
    """Appends every log record (INFO and up, as far as the loggers' levels let them
    through) to `path` while the block runs; nothing when `path` is None."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


# ----------------------------------------------------------------------------- main loop


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    resume_with_more_steps: bool = False,
    log_file: str | None = None,
) -> dict[str, Any]:
    """Trains per `config` in `workdir` (resuming if possible) and evaluates val and test.

    Every input is checked before anything is written (ConfigError, one line): the
    config, the workdir's saved config (`check_resume`; `resume_with_more_steps` as
    there) and the dataset. `log_file`: a file name in the workdir that receives the log
    records of the run (`workdir.LOG_FILE` for `avloc train`)."""
    # --- Checks: nothing is written before all of them pass.
    schema.validate(config)
    workdir = Path(workdir)
    grown = check_resume(config, workdir, resume_with_more_steps=resume_with_more_steps)
    parallel.maybe_initialize_distributed(config.distributed.initialize)
    parallel.local_batch_size(config.train.batch_size, "train.batch_size")  # checks divisibility
    dataset = _load_checked_dataset(config)
    try:  # config.evals and eval.select, against the dataset's task
        evaluators.selection_metric(
            config, evaluators.build_evaluators(lambda *_: {}, config, dataset.metadata)
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None

    # --- The workdir: config, dataset metadata, log file.
    main_process = parallel.is_main_process()
    if main_process:
        workdir.mkdir(parents=True, exist_ok=True)
        io.atomic_write_json(Workdir(workdir).config_path, json.loads(config.to_json_best_effort()))
        # class names and feature sizes, for `avloc predict` / `avloc export`
        write_dataset_metadata(workdir, dataset, config)
    with _log_to_file(workdir / log_file if log_file and main_process else None):
        for key, old, new in grown:
            run_log.info("resuming with %s %s -> %s (--resume_with_more_steps)", key, old, new)
        return _train(config, workdir, dataset, main_process)


def _train(
    config: ml_collections.ConfigDict, workdir: Path, dataset: Dataset, main_process: bool
) -> dict[str, Any]:
    """The run itself, once the inputs are checked and the workdir is set up."""
    writer = writers.create_writer(workdir, enabled=main_process)
    mesh = parallel.make_mesh()
    logging.info(
        "devices: %d (%d processes), global batch %d",
        jax.device_count(),
        jax.process_count(),
        config.train.batch_size,
    )
    meta = dataset.metadata

    # --- Model, optimizer, state.
    model = models.build_model(config.model, meta.num_classes)
    tx, schedule = make_optimizer(config.train)
    state = create_train_state(model, tx, dataset, config.seed, parallel.replicated(mesh))
    num_params = parallel.tree_size(state.params)
    logging.info("parameters: %d", num_params)

    # --- Evaluators and the metric that selects the checkpoint.
    eval_traces = [0]
    eval_step = predict.make_eval_step(model, config.loss.topk_ratio, mesh, trace_count=eval_traces)
    evals = evaluators.build_evaluators(make_predict_fn(config, eval_step, mesh), config, meta)
    select = evaluators.selection_metric(config, evals)

    # --- Checkpoints: resume if the workdir has one.
    checkpoints = Checkpoints(Workdir(workdir).checkpoints_dir, config.train.keep_checkpoints)
    restored = checkpoints.restore("last", state)
    if restored is not None:
        state = restored
        logging.info("resumed from step %d", int(state.step))
    start_step = int(state.step)
    if main_process:
        run_log.info("%s", _run_summary(config, dataset, num_params, start_step))

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
                logdir=Workdir(workdir).profile_dir,
                num_profile_steps=profile_steps,
                profile_duration_ms=None,
                first_profile=(start_step // log_every + 1) * log_every,
                every_secs=None,
            )
        )

    # --- Train loop.
    outcome: dict[str, Any] = {"start_step": start_step}
    last_loss: float | None = None
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
                logging.info("stopped at step %d; rerun the same command to resume", step)
                return {**outcome, "preempted": True, "step": step}

            if due(step, log_every):
                metrics = jax.device_get(metrics)
                elapsed = time.perf_counter() - window_start
                metrics["steps_per_sec"] = window_steps / elapsed
                metrics["videos_per_sec"] = window_steps * config.train.batch_size / elapsed
                metrics["train_compilations"] = train_traces[0]
                writer.write_scalars(step, {"event": "train", **metrics})
                last_loss = float(metrics["loss/total"])
                progress.set_postfix(loss=last_loss)
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
                if main_process:
                    loss = "" if last_loss is None else f"loss {last_loss:.4f}, "
                    marker = " (best so far)" if improved else ""
                    run_log.info(
                        f"step {step}/{num_steps}: {loss}{meta.val_split} {select} {value:.4f}"
                        + marker
                    )
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
    if main_process:
        scores = ", ".join(
            f"{split} {select} {outcome[role].get(select, float('nan')):.4f}"
            for role, split in (("val", meta.val_split), ("test", meta.test_split))
        )
        run_log.info(f"best step {outcome['best_step']} (by {meta.val_split} {select}): {scores}")
    return outcome


def _run_summary(
    config: ml_collections.ConfigDict, dataset: Dataset, num_params: int, start_step: int
) -> str:
    """The run in one line: data, model, optimisation, and where it starts."""
    meta = dataset.metadata
    splits = ", ".join(
        f"{len(dataset.split(s))} {s}" for s in (meta.train_split, meta.val_split, meta.test_split)
    )
    model = config.model
    start = f"resumed at step {start_step}" if start_step else "from scratch"
    return (
        f"{meta.name}: {splits} videos, {meta.num_classes} classes | model {model.fusion}, "
        f"{model.num_stages} stages, embed {model.embed_dim}, {num_params:,} parameters | "
        f"{config.train.num_steps} steps of batch {config.train.batch_size}, "
        f"lr {config.train.learning_rate:g}, seed {config.seed} | {start}"
    )


def _steps_to_next_event(step: int, num_steps: int, intervals: tuple[int, ...]) -> int:
    """Steps from `step` to the next multiple of any interval (or to the end)."""
    targets = [num_steps] + [(step // every + 1) * every for every in intervals if every > 0]
    return min(targets) - step


def evaluate_workdir(
    config: ml_collections.ConfigDict, workdir: str | Path, split: str, checkpoint: str = "best"
) -> dict[str, float]:
    """`avloc evaluate`: scores a trained workdir's checkpoint on one split.

    Checks its inputs before it writes (results/<split>_*.json, at the end): the workdir
    (FileNotFoundError: no checkpoints), the dataset and the split (ConfigError)."""
    workdir = Path(workdir)
    checkpoints_dir = Workdir(workdir).checkpoints_dir
    if not checkpoints_dir.is_dir():
        raise FileNotFoundError(
            f"{checkpoints_dir}: not found; expected a workdir written by `avloc train`"
        )
    parallel.maybe_initialize_distributed(config.distributed.initialize)
    try:
        dataset = load_dataset(config)
    except (OSError, DataError) as err:
        raise ConfigError(f"data.data_dir: {err}") from None
    meta = dataset.metadata
    split = meta.resolve_split(split)
    if split not in dataset.splits:
        raise ConfigError(
            f"split {split!r}: not a split of {meta.name!r}; expected val, test, train or one "
            f"of {sorted(dataset.splits)}"
        )
    mesh = parallel.make_mesh()
    model = models.build_model(config.model, meta.num_classes)
    template = abstract_train_state(config, meta, mesh)
    checkpoints = Checkpoints(checkpoints_dir, config.train.keep_checkpoints, read_only=True)
    state = checkpoints.restore(checkpoint, template)
    checkpoints.close()
    if state is None:
        raise FileNotFoundError(
            f"{checkpoints_dir}: no {checkpoint!r} checkpoint; expected a workdir "
            "that `avloc train` has saved to"
        )
    eval_step = predict.make_eval_step(model, config.loss.topk_ratio, mesh)
    evals = evaluators.build_evaluators(make_predict_fn(config, eval_step, mesh), config, meta)
    metrics, artifacts = evaluate_split(evals, dataset, split, state.params)
    extra = {"step": int(state.step), "checkpoint": checkpoint}
    write_results(workdir, split, metrics, artifacts, extra)
    return metrics
