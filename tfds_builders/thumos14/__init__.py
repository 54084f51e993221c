"""The thumos14 TFDS builder (imported lazily by tfds_builders.get_builder)."""
