"""The semi-synthetic benchmark generator: features with planted audio-visual structure
on the real annotations, written in the real on-disk formats."""
