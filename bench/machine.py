"""What a benchmark's JSON says about the machine it ran on: the one description every
bench script writes under ``machine``.

  load_start = load_average()          # before the timings
  ...                                  # the timings
  info = {**describe(load_start), "numpy": ...}   # after them: the script's own fields added

`describe` gives, measured (nothing typed by hand): ``measured`` (True), ``platform``,
``cpu_model`` (from /proc/cpuinfo; `platform.processor()` is empty on Linux), ``cpus``
(`os.cpu_count`), ``usable_cpus`` (the cores this process may run on, its affinity),
``load_average_start`` and ``load_average_end`` (the 1, 5 and 15 minute load averages
when the timings started and when they ended, None where the OS has none), ``python``;
with ``with_jax`` also ``jax`` and ``devices``. The cores of the development machine are
shared with other jobs, so the load is what tells a quiet run from a disturbed one.

Reports written before this module carry older keys (``cpu_count``, ``cpu_affinity``,
``processor``, ``load_average_1min``, or a note typed by hand); they are read as written
(`ablation_report.machine_text`) and not rewritten.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

# The keys `describe` writes, in order (tests check every bench script's machine has them).
KEYS = (
    "measured",
    "platform",
    "cpu_model",
    "cpus",
    "usable_cpus",
    "load_average_start",
    "load_average_end",
    "python",
)


def cpu_model() -> str:
    """The CPU model as the machine reports it (/proc/cpuinfo, else `platform`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages now (None where the OS has none)."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


def usable_cpus() -> int | None:
    """The cores this process may run on (its affinity; `os.cpu_count` where the OS has no
    affinity)."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(affinity) if affinity is not None else os.cpu_count()


def describe(load_at_start: list[float] | None, *, with_jax: bool = False) -> dict[str, Any]:
    """The machine, measured now, at the end of the timings; `load_at_start` is what
    `load_average()` read when they started. ``with_jax`` adds JAX's version and devices
    (imported only then: a NumPy-only bench does not load JAX for it)."""
    info: dict[str, Any] = {
        "measured": True,
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "load_average_start": load_at_start,
        "load_average_end": load_average(),
        "python": platform.python_version(),
    }
    if with_jax:
        import jax

        info["jax"] = jax.__version__
        info["devices"] = [str(d) for d in jax.devices()]
    return info
