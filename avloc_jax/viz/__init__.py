"""Figures: class activation, foreground reliability, detections, attention maps and
training curves."""
