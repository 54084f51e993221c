"""avloc-jax: weakly-supervised audio-visual temporal action localization in JAX."""

__version__ = "0.1.0"
