"""Scoring during and after training, and `avloc evaluate`.

The evaluators (avloc_jax/evaluation/evaluators.py) get a predict function that runs the
jitted eval step over a split (`make_predict_fn`) and each its own config section
(`build_evaluators`); `evaluate_split` runs them on one split (an `EvalResult`);
`write_results` writes results/<split>_metrics.json and each artefact with its writer;
`evaluate_workdir` is `avloc evaluate`: one checkpoint of a trained workdir on one split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ml_collections

from avloc_jax import model as models
from avloc_jax import schema
from avloc_jax.common import io, parallel
from avloc_jax.common.config_checks import ConfigError
from avloc_jax.common.workdir import Workdir
from avloc_jax.data import loading
from avloc_jax.data.records import Dataset, Record
from avloc_jax.engine.checkpoints import Checkpoints
from avloc_jax.engine.state import abstract_train_state
from avloc_jax.evaluation import evaluators, predict


def make_predict_fn(
    eval_step: Callable, mesh: Any, *, batch_size: int, buckets: Sequence[int]
) -> evaluators.PredictFn:
    """The evaluators' predict function: `predict_fn(params, source) -> {index: outputs}`,
    global batches of `batch_size` videos padded to the length `buckets`
    (`config.eval.batch_size`, `config.data.eval_buckets`)."""

    def predict_fn(params: Any, source: Sequence[Record]) -> dict[int, predict.VideoOutputs]:
        return predict.collect_outputs(
            eval_step, params, source, batch_size=batch_size, buckets=tuple(buckets), mesh=mesh
        )

    return predict_fn


def build_evaluators(
    config: ml_collections.ConfigDict, task: str, predict_fn: evaluators.PredictFn
) -> dict[str, evaluators.Evaluator]:
    """The config's evaluators (`config.evals`, or the dataset `task`'s standard one),
    each given only its own config section."""
    names = evaluators.evaluator_names(config.evals, task)
    sections = {section: config[section] for section in evaluators.config_sections(names)}
    return evaluators.build_evaluators(predict_fn, names, sections)


def evaluate_split(
    evals: dict[str, evaluators.Evaluator], dataset: Dataset, split: str, params: Any
) -> evaluators.EvalResult:
    """The metrics and artefacts of `params` on `split`, from every configured evaluator."""
    return evaluators.run_evaluators(
        evals, params, dataset.split(split), dataset.metadata, subset=split
    )


def write_results(workdir: Path, split: str, result: evaluators.EvalResult, extra: dict) -> None:
    """Writes results/<split>_metrics.json ({"split", **extra, "metrics"}) and each artefact
    NAME as results/<split>_NAME<suffix> with its own writer; process 0 only."""
    if not parallel.is_main_process():
        return
    layout = Workdir(workdir)
    layout.results_dir.mkdir(parents=True, exist_ok=True)
    io.atomic_write_json(
        layout.results_path(split, "metrics"),
        {"split": split, **extra, "metrics": dict(result.metrics)},
    )
    for name, artefact in result.artefacts.items():
        artefact.write(
            layout.results_path(split, name).with_suffix(artefact.suffix), artefact.payload
        )


def evaluate_workdir(
    config: ml_collections.ConfigDict, workdir: str | Path, split: str, checkpoint: str = "best"
) -> dict[str, float]:
    """`avloc evaluate`: scores a trained workdir's checkpoint on one split.

    Checks its inputs before it writes (results/<split>_*.json, at the end): the config
    (`schema.validate`), the workdir (FileNotFoundError: no checkpoints), the dataset and
    the split (ConfigError)."""
    schema.validate(config)
    workdir = Path(workdir)
    checkpoints_dir = Workdir(workdir).checkpoints_dir
    if not checkpoints_dir.is_dir():
        raise FileNotFoundError(
            f"{checkpoints_dir}: not found; expected a workdir written by `avloc train`"
        )
    parallel.maybe_initialize_distributed(config.distributed.initialize)
    dataset = loading.open_dataset(config)
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
    predict_fn = make_predict_fn(
        eval_step, mesh, batch_size=config.eval.batch_size, buckets=config.data.eval_buckets
    )
    result = evaluate_split(
        build_evaluators(config, meta.task, predict_fn), dataset, split, state.params
    )
    write_results(workdir, split, result, {"step": int(state.step), "checkpoint": checkpoint})
    return dict(result.metrics)
