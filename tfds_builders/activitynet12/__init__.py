"""The activitynet12 TFDS builder (imported lazily by tfds_builders.get_builder)."""
