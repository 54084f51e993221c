"""Evaluation: the padded-and-masked predict function, localization post-processing,
the official detection mAP, AVE segment accuracy and the split evaluators."""
