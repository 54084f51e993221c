"""Serving: load a trained workdir or an exported bundle, predict on feature files or
dataset splits, and export self-contained inference bundles."""
