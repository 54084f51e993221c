"""Where the Flax I3D's CPU time goes, and what its convolutions run on.

  python bench/i3d_profile.py [--batch-size 8] [--rounds 3] [--out JSON]

For the I3D RGB network (seeded random weights; the cost does not depend on them) on
--batch-size snippets of 16 x 224 x 224:

* ``paths``: how XLA's CPU backend executes the compiled graph, counted from its
  optimised HLO: ``ynn_fusion`` (a YNNPACK kernel: convolutions, matrix products, some
  pools), ``convolution`` / ``dot`` left at the top level (XLA's own Eigen-based
  kernels), ``reduce-window``;
* the same counts and the wall time of the graph XLA gets from a direct 3D convolution
  (``lax.conv_general_dilated`` over T, H, W: how `extraction.i3d.Conv3D` computed
  before it stacked the time taps on the channels), with the same variables, the
  features compared; the two alternate for --rounds rounds;
* ``layers``: the fastest of --rounds traced calls of the current graph (XLA's per-thunk
  trace events, ``--xla_cpu_enable_xprof_traceme``), its time summed by layer group (the 7x7x7 stem,
  the 3x3x3 convolutions, the 1x1x1 ones, max pools, pads and concatenations), with the
  achieved GFLOP/s of the convolution groups (2 x multiply-adds of their output shapes).

Prints one JSON object and writes it to --out.
"""

from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true"
).strip()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from machine import describe, load_average  # noqa: E402  (bench/machine.py)

from avloc_jax.common import io  # noqa: E402
from avloc_jax.extraction import convert, i3d  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results_cpu_extract_speed_i3d_profile.json"


class DirectConv3D(i3d.Conv3D):
    """`i3d.Conv3D`'s variables, computed as one direct 3D convolution (the former path)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel",
            nn.initializers.lecun_normal(),
            (*self.kernel_size, x.shape[-1], self.features),
            jnp.float32,
        )
        y = jax.lax.conv_general_dilated(
            x,
            kernel,
            self.strides,
            [(0, 0), *self.spatial_padding],
            dimension_numbers=("NDHWC", "DHWIO", "NDHWC"),
        )
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


def network(direct: bool) -> Any:
    """The jitted I3D RGB forward pass, with the current or the direct 3D convolution."""
    original = i3d.Conv3D
    module = i3d.InceptionI3D(3)

    def forward(variables: Any, x: jax.Array) -> jax.Array:
        i3d.Conv3D = DirectConv3D if direct else original  # Unit3D looks it up when traced
        try:
            return module.apply(variables, x)
        finally:
            i3d.Conv3D = original

    return jax.jit(forward)


def op_paths(hlo: str) -> dict[str, int]:
    """Top-level operations of the entry computation, by how they execute."""
    entry = hlo[hlo.index("\nENTRY") :]
    counts: collections.Counter[str] = collections.Counter()
    for line in entry.splitlines():
        if re.search(r"= \S+ fusion\(.*kind=kCustom", line) and "ynn_fusion" in line:
            counts["ynn_fusion"] += 1
        else:
            match = re.search(r"= \S+ (convolution|dot|reduce-window)\(", line)
            if match:
                counts[match.group(1)] += 1
    return {k: counts.get(k, 0) for k in ("ynn_fusion", "convolution", "dot", "reduce-window")}


def _group(op_name: str) -> str:
    if "Conv3d_1a_7x7" in op_name and "conv_general" in op_name:
        return "stem conv 7x7x7"
    if ("b1b" in op_name or "b2b" in op_name or "Conv3d_2c" in op_name) and (
        "conv_general" in op_name
    ):
        return "3x3x3 convs"
    if "dot_general" in op_name or "conv_general" in op_name:
        return "1x1x1 convs"
    if "max" in op_name:
        return "max pools"
    if "pad" in op_name or "concatenate" in op_name:
        return "pads and concatenations"
    return "other"


def traced_layers(forward: Any, variables: Any, x: jax.Array, calls: int) -> dict[str, Any]:
    """The fastest of `calls` traced calls (the least disturbed by other processes):
    seconds per layer group, and GFLOP/s of the convolution groups."""
    hlo = forward.lower(variables, x).compile().as_text()
    entry = hlo[hlo.index("\nENTRY") :]
    ops: dict[str, tuple[str, float]] = {}
    for line in entry.splitlines():
        match = re.match(r"\s*(?:ROOT )?%(\S+) = f32\[([\d,]*)\]\S* .*?op_name=\"([^\"]+)\"", line)
        if match:
            name, shape, op_name = match.groups()
            ops[name] = (op_name, float(np.prod([int(d) for d in shape.split(",") if d])))
    flops = _conv_flops(variables, x)
    forward(variables, x).block_until_ready()
    best: tuple[float, collections.Counter[str]] | None = None
    for _ in range(calls):
        with tempfile.TemporaryDirectory() as tmp:
            jax.profiler.start_trace(tmp)
            started = time.perf_counter()
            forward(variables, x).block_until_ready()
            wall = time.perf_counter() - started
            jax.profiler.stop_trace()
            traces = sorted(Path(tmp).rglob("*.xplane.pb"))
            data = jax.profiler.ProfileData.from_file(str(traces[-1]))
        seconds: collections.Counter[str] = collections.Counter()
        for plane in data.planes:
            for line in plane.lines:
                for event in line.events:
                    if event.name in ops:
                        seconds[_group(ops[event.name][0])] += event.duration_ns * 1e-9
        if best is None or wall < best[0]:
            best = (wall, seconds)
    assert best is not None
    wall, seconds = best
    total = sum(seconds.values())
    groups = {
        group: {
            "seconds": round(s, 3),
            "share": round(s / total, 3),
            **({"gflop_per_s": round(flops[group] / s / 1e9, 1)} if group in flops else {}),
        }
        for group, s in seconds.most_common()
    }
    return {
        "traced_calls": calls,
        "wall_seconds": round(wall, 3),
        "traced_seconds": round(total, 3),
        "groups": groups,
    }


def _conv_flops(variables: Any, x: jax.Array) -> dict[str, float]:
    """2 x multiply-adds of every convolution, by group, from the layer output shapes."""
    module = i3d.InceptionI3D(3)
    _, state = module.apply(variables, x[:1], capture_intermediates=True, mutable=["intermediates"])
    flops: collections.Counter[str] = collections.Counter()
    kernels = {
        "/".join(str(k.key) for k in path[:-2]): leaf.shape
        for path, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0]
        if str(path[-1].key) == "kernel"
    }
    intermediates = jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]
    for path, out in intermediates:
        keys = [str(getattr(k, "key", k)) for k in path]
        if "conv3d" not in keys or keys[-2] != "__call__":
            continue
        owner = "/".join(keys[: keys.index("conv3d")])
        kt, kh, kw, cin, _ = kernels[owner]
        name = f"{owner}/conv3d/{'dot_general' if kt * kh * kw == 1 else 'conv_general'}"
        flops[_group(name)] += 2.0 * out.size * kt * kh * kw * cin * x.shape[0]
    return dict(flops)


def machine(load_at_start: list[float] | None) -> dict[str, Any]:
    """bench/machine.py's description with JAX (measured after the timings; the load when
    they started and ended), and the XLA flags the graphs were compiled with."""
    return {**describe(load_at_start, with_jax=True), "xla_flags": os.environ["XLA_FLAGS"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    load_start = load_average()  # before the timings
    variables = jax.tree.map(jnp.asarray, convert.random_variables("i3d_rgb", 0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (args.batch_size, 16, 224, 224, 3)).astype(np.float32))
    forwards = {"tap_stacked_2d": network(False), "direct_3d": network(True)}
    paths, features = {}, {}
    for name, forward in forwards.items():
        paths[name] = op_paths(forward.lower(variables, x).compile().as_text())
        features[name] = np.asarray(forward(variables, x))  # compiles
    seconds: dict[str, list[float]] = {name: [] for name in forwards}
    for _ in range(args.rounds):
        for name, forward in forwards.items():
            started = time.perf_counter()
            forward(variables, x).block_until_ready()
            seconds[name].append(round(time.perf_counter() - started, 3))
    ratios = [d / t for t, d in zip(seconds["tap_stacked_2d"], seconds["direct_3d"])]
    layers = traced_layers(forwards["tap_stacked_2d"], variables, x, args.rounds)
    report = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT))] + sys.argv[1:]),
        "machine": machine(load_start),  # after the timings: the load when they ended
        "batch_size": args.batch_size,
        "paths": paths,
        "seconds": seconds,
        "snippets_per_second": {
            name: round(args.batch_size / float(np.median(s)), 3) for name, s in seconds.items()
        },
        "speedup_over_direct_3d": {
            "median": round(float(np.median(ratios)), 2),
            "range": [round(min(ratios), 2), round(max(ratios), 2)],
            # the least disturbed call of each: other processes only ever add time
            "fastest_over_fastest": round(
                min(seconds["direct_3d"]) / min(seconds["tap_stacked_2d"]), 2
            ),
        },
        "max_abs_diff_direct_3d": float(
            np.abs(features["tap_stacked_2d"] - features["direct_3d"]).max()
        ),
        "layers": layers,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        io.atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
