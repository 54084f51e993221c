"""Options shared by the commands that read video files (`extract-features`, `localize`)."""

from __future__ import annotations

import argparse


def add_video_options(parser: argparse.ArgumentParser) -> None:
    """--batch-size, --allow-missing-audio and --quiet, with one meaning in every command."""
    parser.add_argument("--batch-size", type=int, help="I3D snippets per forward pass (default 8)")
    parser.add_argument(
        "--allow-missing-audio",
        action="store_true",
        help="use silence for videos without an audio track (with a warning) instead of failing",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def video_options_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the shared options, or None."""
    if args.batch_size is not None and args.batch_size < 1:
        return "--batch-size must be at least 1"
    return None
