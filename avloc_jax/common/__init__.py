"""Helpers that every layer may use and that import nothing from the project: the device
mesh and shardings, progress bars, atomic file writes."""
