"""TV-L1 optical flow for the I3D flow stream, with OpenCV (the optional `flow` extra).

The recipe is kinetics-i3d's, with which the I3D flow features of W-TALC were made:
frames at 25 fps resized to a 256 shorter side, converted to grayscale, TV-L1 flow
(`cv2.optflow.DualTVL1OpticalFlow`, OpenCV's default parameters) between each frame and
the next, values truncated to [-20, 20] and scaled to [-1, 1]; then the centre 224 x 224
crop. Channel 0 is the horizontal (x) component, channel 1 the vertical (y) one.
Frame i's field is flow(i -> i + 1); the video's last frame, which has no successor,
repeats the field before it. Unlike the released features (whose flow went through 8-bit
JPEG images), the fields are kept as float32.

TV-L1 is slow on a CPU (about 0.1 s a frame pair at 256 x 341 on 2 cores); the pipeline shows a
progress bar and runs it in its decoding thread, overlapped with the networks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

FLOW_BOUND = 20.0  # pixels: |flow| is truncated here, then divided by it


class FlowUnavailable(RuntimeError):
    """OpenCV with the contrib modules (cv2.optflow) is not installed."""


def tvl1() -> Any:
    """A new `cv2.optflow.DualTVL1OpticalFlow` with OpenCV's defaults."""
    try:
        import cv2
    except ImportError:
        raise FlowUnavailable(
            "optical flow needs OpenCV with its contrib modules: "
            "pip install -e '.[flow]'  (opencv-contrib-python-headless)"
        ) from None
    if not hasattr(cv2, "optflow"):
        raise FlowUnavailable(
            f"OpenCV {cv2.__version__} is installed without the contrib modules "
            "(cv2.optflow is missing): pip uninstall opencv-python opencv-python-headless; "
            "pip install -e '.[flow]'"
        )
    # The contrib module ships no type stub for optflow.
    return cv2.optflow.DualTVL1OpticalFlow_create()  # type: ignore[attr-defined]


def to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB [n, H, W, 3] -> uint8 [n, H, W] (ITU-R 601 luma, as cv2.COLOR_RGB2GRAY)."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(frames.astype(np.float32) @ weights), 0, 255).astype(np.uint8)


def scale_flow(flow: np.ndarray) -> np.ndarray:
    """Pixels -> [-1, 1]: truncated to [-20, 20], divided by 20."""
    return (np.clip(flow, -FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND).astype(np.float32)


def flow_fields(frames: np.ndarray, next_frame: np.ndarray | None, algorithm: Any) -> np.ndarray:
    """float32 [n, H, W, 2] in [-1, 1]: field i = TV-L1(frame i, frame i + 1), the last
    one against `next_frame` (the first frame of the next chunk), or a repeat of the
    previous field at the end of the video (zeros for a one-frame video)."""
    gray = to_gray(frames)
    if next_frame is not None:
        gray = np.concatenate([gray, to_gray(next_frame[None])])
    fields = np.zeros((len(frames), *frames.shape[1:3], 2), np.float32)
    for i in range(len(gray) - 1):
        fields[i] = scale_flow(algorithm.calc(gray[i], gray[i + 1], None))
    if next_frame is None and len(frames) > 1:
        fields[-1] = fields[-2]
    return fields


def with_flow(
    chunks: Iterator[np.ndarray], algorithm: Any
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frames, flow fields) per chunk of frames [n, H, W, 3]: each chunk waits for the
    first frame of the next one, so that its last field is a real flow."""
    previous: np.ndarray | None = None
    for chunk in chunks:
        if previous is not None:
            yield previous, flow_fields(previous, chunk[0], algorithm)
        previous = chunk
    if previous is not None:
        yield previous, flow_fields(previous, None, algorithm)
