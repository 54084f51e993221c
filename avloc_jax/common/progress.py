"""Progress bars for training, evaluation and dataset builds (tqdm), quiet off a terminal.

A bar is drawn only when its stream (stderr) is an interactive terminal. Under a job
scheduler, in CI, behind a pipe or with stderr redirected to a file it prints nothing at
all: the engine's log lines and `metrics.jsonl` already record progress there, and a
carriage-return bar would only fill log files with garbage. `AVLOC_PROGRESS=1` forces bars
on (e.g. in a notebook), `AVLOC_PROGRESS=0` forces them off.

    bar = ProgressBar(total=num_steps, initial=start_step, desc="train", unit="step")
    bar.update(count, loss=0.42)     # advances by `count` steps, shows the loss
    bar.close()

tqdm itself shows the rate (steps/s), the elapsed time and the ETA. While a bar is drawn
on stderr, other writes to `sys.stderr` (log lines) are printed above it, not through it.

`run_log` is the logger of the few lines a command shows by default, bar or no bar (a
training's config, one line per validation, its result); the commands print its records
as plain lines (`StderrHandler`), and the library's detail goes to the other loggers.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

ENV_VAR = "AVLOC_PROGRESS"

RUN_LOG = "avloc_jax.run"
run_log = logging.getLogger(RUN_LOG)


class StderrHandler(logging.StreamHandler):
    """A logging handler writing to whatever `sys.stderr` is when a record is emitted, so
    that its lines go above a progress bar (which swaps sys.stderr) and into a test's
    captured stderr."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_enabled(stream: TextIO | None = None) -> bool:
    """Whether bars should be drawn on `stream` (default stderr): the AVLOC_PROGRESS
    override if set, else whether the stream is a terminal."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    return _is_tty(sys.stderr if stream is None else stream)


def _format_value(value: Any) -> str:
    """Compact postfix values: 4 significant digits for floats, as-is otherwise."""
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        value = value.item()  # NumPy / JAX scalars
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


class ProgressBar:
    """A tqdm bar over `total` units starting at `initial`; a no-op when disabled.

    Args:
      total: units at completion (e.g. train.num_steps); None if unknown.
      initial: units already done (e.g. the step a resumed run starts from), so that the
        bar and its ETA start where the run does.
      desc: short label shown before the bar.
      enabled: None = decide from the terminal (`progress_enabled`); False for processes
        other than the main one.
      unit: what one unit is called ("step", "video", ...).
      stream: where to draw (default stderr, leaving stdout to results).
      leave: keep the finished bar on screen; False for short inner bars (an
        evaluation inside training) so that they vanish when done.
    """

    def __init__(
        self,
        total: int | None,
        initial: int = 0,
        desc: str = "",
        enabled: bool | None = None,
        unit: str = "step",
        stream: TextIO | None = None,
        leave: bool = True,
    ):
        redirect = stream is None or stream is sys.stderr
        stream = sys.stderr if stream is None else stream
        self.enabled = progress_enabled(stream) if enabled is None else bool(enabled)
        self._bar = None
        self._postfix: dict[str, str] = {}
        self._saved_stderr: TextIO | None = None
        if self.enabled:
            from tqdm import tqdm  # imported lazily: only a terminal user pays for it

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc or None,
                unit=unit,
                file=stream,
                dynamic_ncols=True,
                # Device-resident training advances in big chunks; a slow smoothing keeps
                # the steps/s and ETA from jumping at every chunk.
                smoothing=0.1,
                mininterval=0.5,
                leave=leave,
            )
            if redirect and not isinstance(sys.stderr, _LinesAboveBar):
                # Log lines (absl and logging write to whatever sys.stderr is when they
                # emit) are printed above the bar instead of through it.
                self._saved_stderr = sys.stderr
                sys.stderr = _LinesAboveBar(self._saved_stderr)

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Advances by `n` units; keyword arguments update the shown values (loss=...),
        others shown earlier (e.g. the last val metric) stay."""
        if self._bar is None:
            return
        if postfix:
            self._merge_postfix(postfix, refresh=False)
        self._bar.update(n)

    def set_postfix(self, **postfix: Any) -> None:
        """Updates shown values without advancing (e.g. the val metric after an eval)."""
        if self._bar is not None:
            self._merge_postfix(postfix, refresh=True)

    def _merge_postfix(self, postfix: dict[str, Any], refresh: bool) -> None:
        assert self._bar is not None  # callers return early when the bar is disabled
        self._postfix.update({k: _format_value(v) for k, v in postfix.items()})
        self._bar.set_postfix(self._postfix, refresh=refresh)

    def write(self, message: str) -> None:
        """Prints a line above the bar (or nothing when the bar is disabled)."""
        if self._bar is not None:
            self._bar.write(message, file=self._bar.fp)

    def close(self) -> None:
        if self._saved_stderr is not None:
            if isinstance(sys.stderr, _LinesAboveBar):
                sys.stderr.flush()
            sys.stderr, self._saved_stderr = self._saved_stderr, None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _LinesAboveBar:
    """A stand-in for sys.stderr while a bar is drawn: complete lines are printed with
    `tqdm.write`, which clears the bar, prints the line and redraws the bar."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        from tqdm import tqdm

        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            tqdm.write(line, file=self._stream)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            from tqdm import tqdm

            tqdm.write(self._pending, file=self._stream)
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def track(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "item",
    enabled: bool | None = None,
    leave: bool = True,
) -> Iterator[T]:
    """Iterates `iterable` with a bar (e.g. videos of a dataset build); quiet off a TTY."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with ProgressBar(total, desc=desc, unit=unit, enabled=enabled, leave=leave) as bar:
        for item in iterable:
            yield item
            bar.update(1)
