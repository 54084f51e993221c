"""Training and evaluation: one readable loop (big_vision style).

`train_and_evaluate(config, workdir)` turns a config into a trained, evaluated model
(`TrainOutcome`), in a workdir laid out by common/workdir.py: the resolved config, the
dataset metadata, metrics.jsonl and TensorBoard events (engine/writers.py), orbax
checkpoints (the last `train.keep_checkpoints` saves and the best by the validation
metric, engine/checkpoints.py), and results/<split>_*.json.

Model selection reads the validation split only: `config.eval.select` names the metric
among those of the evaluators in `config.evals` (evaluation/evaluators.py). The test split
is scored once, at the end, with the best-by-validation parameters. A run that finds a
checkpoint in its workdir resumes from it; SIGTERM saves a checkpoint and exits cleanly.

Nothing is written before every input is checked (the "checks" below): the config
(`schema.validate`), the workdir's saved config against it (`check_resume`: a workdir
holds one run) and the dataset; a problem with any of them is a one-line `ConfigError`
naming the key or file, and the workdir is left as it was (not even created). The few
lines a user sees by default go to `common.progress.run_log` (the run in one line, one
line per validation, the result); the rest of the log is INFO detail (`log_file`).

The pieces live beside this loop: engine/steps.py (the jitted train and eval steps and
where batches come from), engine/state.py, engine/checkpoints.py, engine/writers.py,
engine/evaluate.py (the evaluators' predict function, results files, `avloc evaluate`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
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
from avloc_jax.data import loading
from avloc_jax.data.loading import load_dataset
from avloc_jax.data.metadata_file import write_dataset_metadata
from avloc_jax.data.records import Dataset
from avloc_jax.engine import periodic, writers
from avloc_jax.engine import steps as steps_lib
from avloc_jax.engine.checkpoints import Checkpoints, PreemptionFlag
from avloc_jax.engine.evaluate import (
    build_evaluators,
    evaluate_split,
    evaluate_workdir,
    make_predict_fn,
    write_results,
)
from avloc_jax.engine.state import TrainState, abstract_train_state, create_train_state
from avloc_jax.engine.steps import make_device_resident_chunk, make_train_step
from avloc_jax.evaluation import evaluators
from avloc_jax.optimizer import make_optimizer

__all__ = [
    "Checkpoints",
    "PreemptionFlag",
    "TrainOutcome",
    "TrainState",
    "abstract_train_state",
    "build_evaluators",
    "check_resume",
    "create_train_state",
    "evaluate_split",
    "evaluate_workdir",
    "load_dataset",
    "make_device_resident_chunk",
    "make_optimizer",
    "make_predict_fn",
    "make_train_step",
    "train_and_evaluate",
]


@dataclasses.dataclass(frozen=True)
class TrainOutcome:
    """What a call of `train_and_evaluate` did.

    start_step: the step it started from (0, or the step it resumed at).
    step: the last step it trained.
    preempted: it stopped on SIGTERM at `step`, after saving a checkpoint; rerun to resume.
    best_step: the step of the best-by-validation checkpoint, whose scores `val` and
      `test` are (None and empty when preempted).
    """

    start_step: int
    step: int
    preempted: bool = False
    best_step: int | None = None
    val: dict[str, float] = dataclasses.field(default_factory=dict)
    test: dict[str, float] = dataclasses.field(default_factory=dict)


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    resume_with_more_steps: bool = False,
    log_file: str | None = None,
) -> TrainOutcome:
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
    dataset = _checked_dataset(config)
    try:  # eval.select, against the evaluators of config.evals for the dataset's task
        names = evaluators.evaluator_names(config.evals, dataset.metadata.task)
        evaluators.selection_metric(
            config.eval.select, {name: evaluators.EVALUATORS[name] for name in names}
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None

    # --- The workdir: config, dataset metadata, log file.
    main_process = parallel.is_main_process()
    if main_process:
        workdir.mkdir(parents=True, exist_ok=True)
        io.atomic_write_json(Workdir(workdir).config_path, json.loads(config.to_json_best_effort()))
        # class names and feature sizes, for `avloc predict` / `avloc export`
        write_dataset_metadata(workdir, dataset, loading.declared_snippet_seconds(config))
    with periodic.log_to_file(workdir / log_file if log_file and main_process else None):
        for key, old, new in grown:
            run_log.info("resuming with %s %s -> %s (--resume_with_more_steps)", key, old, new)
        return _train(config, workdir, dataset, main_process)


# ----------------------------------------------------------------------------- checks

# The keys a resumed run may change (with resume_with_more_steps); see check_resume.
GROWABLE = ("train.num_steps",)


def check_resume(
    config: ml_collections.ConfigDict, workdir: str | Path, *, resume_with_more_steps: bool = False
) -> list[tuple[str, Any, Any]]:
    """Whether `config` may train in `workdir`; raises ConfigError if not. Writes nothing.

    A workdir holds one run: its config.json is the config of its checkpoints and
    metrics. A workdir without config.json (new or empty) takes any config; one with it
    takes the same config, which is how a preempted run resumes. The saved config is
    migrated (`config_migration`: an older one gets the keys added since, with the values
    that reproduce it) and validated like any config; both sides are compared as JSON
    (tuples equal lists), without data.demo unless the data is the demo (validate's
    rule). Any other config is refused with one line naming every differing key, with
    its saved and its given value.

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
    if saved.get("data", {}).get("name") != loading.DEMO and given["data"]["name"] != loading.DEMO:
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


def _checked_dataset(config: ml_collections.ConfigDict) -> Dataset:
    """The config's dataset (`loading.open_dataset`); ConfigError if its validation split
    is its test split: model selection must not see the test split."""
    dataset = loading.open_dataset(config)
    meta = dataset.metadata
    if meta.val_split == meta.test_split:
        raise ConfigError(
            f"data.val_fraction: {meta.name}: the validation split is the test split "
            f"({meta.test_split!r}); model selection must not see the test split: set "
            "data.val_fraction > 0 to hold out part of training"
        )
    return dataset


# ----------------------------------------------------------------------------- the run


def _train(
    config: ml_collections.ConfigDict, workdir: Path, dataset: Dataset, main_process: bool
) -> TrainOutcome:
    """The run itself, once the inputs are checked and the workdir is set up."""
    meta = dataset.metadata
    num_steps = config.train.num_steps
    writer = writers.create_writer(workdir, enabled=main_process)
    mesh = parallel.make_mesh()
    logging.info(
        "devices: %d (%d processes), global batch %d",
        jax.device_count(),
        jax.process_count(),
        config.train.batch_size,
    )

    # --- Model, optimizer, state; resumed from the workdir's last checkpoint if any.
    model = models.build_model(config.model, meta.num_classes)
    tx, schedule = make_optimizer(config.train)
    state = create_train_state(model, tx, dataset, config.seed, parallel.replicated(mesh))
    num_params = parallel.tree_size(state.params)
    checkpoints = Checkpoints(Workdir(workdir).checkpoints_dir, config.train.keep_checkpoints)
    state = checkpoints.restore("last", state) or state
    start_step = int(state.step)
    logging.info("parameters: %d; starting at step %d", num_params, start_step)
    if main_process:
        run_log.info("%s", _run_summary(config, dataset, num_params, start_step))

    # --- Steps, batches and evaluators.
    steps = steps_lib.make_steps(
        model,
        tx,
        schedule,
        mesh,
        loss_config=config.loss,
        train_source=dataset.split(meta.train_split),
        batch_size=config.train.batch_size,
        num_snippets=config.data.num_snippets,
        sampling=config.data.sampling,
        device_resident=config.data.device_resident,
        seed=config.seed,
        start_step=start_step,
    )
    predict_fn = make_predict_fn(
        steps.eval, mesh, batch_size=config.eval.batch_size, buckets=config.data.eval_buckets
    )
    evals = build_evaluators(config, meta.task, predict_fn)
    select = evaluators.selection_metric(config.eval.select, evals)

    # --- Periodic actions: clu's, called after every train call (see `periodic.Due`).
    batch_size = config.train.batch_size
    window = periodic.TrainWindow()
    last_loss: list[float] = []

    def log_train(step: int, t: float, metrics: Any, **_: Any) -> None:
        metrics = jax.device_get(metrics)
        metrics.update(window.rates(batch_size))
        metrics["train_compilations"] = steps.train_compilations[0]
        writer.write_scalars(step, {"event": "train", **metrics})
        last_loss[:] = [float(metrics["loss/total"])]
        progress.set_postfix(loss=last_loss[0])

    def validate(step: int, t: float, state: TrainState, **_: Any) -> None:
        with report_progress.timed("eval", wait_jax_async_dispatch=False):
            val_metrics = evaluate_split(evals, dataset, meta.val_split, state.params).metrics
        value = evaluators.check_selection(select, val_metrics, tuple(evals))
        improved = checkpoints.save(state, value)
        writer.write_scalars(
            step,
            {
                "event": "eval",
                "split": meta.val_split,
                "is_best": improved,
                # Compiled eval shapes so far: one per length bucket met (docs/data.md).
                "eval_compilations": steps.eval_compilations[0],
                **val_metrics,
            },
        )
        progress.set_postfix(**{f"val_{select}": value})
        if main_process:
            loss = f"loss {last_loss[0]:.4f}, " if last_loss else ""
            marker = " (best so far)" if improved else ""
            run_log.info(
                f"step {step}/{num_steps}: {loss}{meta.val_split} {select} {value:.4f}{marker}"
            )
        window.restart()  # evaluation is not train time

    def save(step: int, t: float, state: TrainState, **_: Any) -> None:
        checkpoints.save(state)

    log_every = config.train.log_every_steps
    events = (
        periodic.Due(log_every, num_steps, log_train),
        periodic.Due(config.eval.every_steps, num_steps, validate),
        periodic.Due(config.train.checkpoint_every_steps, num_steps, save),
    )
    report_progress = writers.periodic_actions.ReportProgress(
        num_train_steps=num_steps, every_secs=60.0
    )
    hooks: list[Callable[[int], Any]] = [report_progress]
    profile_steps = int(config.train.profile_steps)
    if profile_steps > 0 and main_process:  # one trace, from this run's first log step on
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
    step = start_step
    progress = ProgressBar(
        num_steps, initial=start_step, desc="train", enabled=None if main_process else False
    )
    with PreemptionFlag() as preemption, progress:
        while step < num_steps:
            # Host-fed: one step per call. Device-resident: every step to the next event.
            count = periodic.steps_to_next_event(step, events) if steps.fused else 1
            state, metrics = steps.train(state, count)
            step += count
            window.add(count)
            progress.update(count)
            for hook in hooks:
                hook(step)
            if preemption.reached(step, checkpoints):
                checkpoints.save(state)
                checkpoints.close()
                writer.write_scalars(step, {"event": "preempted"})
                writer.close()
                logging.info("stopped at step %d; rerun the same command to resume", step)
                return TrainOutcome(start_step=start_step, step=step, preempted=True)
            for event in events:
                event(step, state=state, metrics=metrics)

    # --- Final evaluation: best-by-val parameters on val, then test once.
    final_state = checkpoints.restore("best", state) or state
    checkpoints.close()
    best_step = int(final_state.step)
    scores = {}
    for split in (meta.val_split, meta.test_split):
        result = evaluate_split(evals, dataset, split, final_state.params)
        write_results(workdir, split, result, {"step": best_step, "checkpoint": "best"})
        scores[split] = dict(result.metrics)
        writer.write_scalars(best_step, {"event": "final", "split": split, **scores[split]})
    writer.close()
    if main_process:
        summary = ", ".join(
            f"{split} {select} {scores[split].get(select, float('nan')):.4f}" for split in scores
        )
        run_log.info(f"best step {best_step} (by {meta.val_split} {select}): {summary}")
    return TrainOutcome(
        start_step=start_step,
        step=step,
        best_step=best_step,
        val=scores[meta.val_split],
        test=scores[meta.test_split],
    )


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
