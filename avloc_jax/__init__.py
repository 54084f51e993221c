"""avloc-jax: weakly-supervised audio-visual temporal action localization in JAX.

The package is split by layer; each layer imports only the layers below it
(enforced by import-linter, see `pyproject.toml` and `docs/architecture.md`):

    cli          commands: parse arguments, call the library
    serving      load a trained model, predict on files, export bundles
    engine       train state, the training loop, checkpoints
    viz          figures
    benchmark    the semi-synthetic benchmark generator
    evaluation   the predict function, detection mAP, AVE accuracy, post-processing
    losses       the training objective
    model        Flax modules: embeddings, cross-attention, heads
    data         real formats, annotations, datasets, the input pipeline
    common       sharding, progress, atomic files (no project imports)
"""

__version__ = "0.1.0"
