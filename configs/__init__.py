"""Experiment configs: each module defines `get_config()` -> ml_collections.ConfigDict."""
