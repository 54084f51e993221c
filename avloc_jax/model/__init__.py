"""The model: Flax modules for the modality embeddings, the multi-stage cross-attention,
the open-max and closed-set heads, and `build_model`."""
