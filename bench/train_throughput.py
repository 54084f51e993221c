"""Train-step throughput: step time, videos/s, compile time, memory, FLOPs, utilisation.

  python bench/train_throughput.py [--shapes ave,activitynet] [--batch-sizes 32,128]
                                   [--dtypes float32,bfloat16] [--steps 20] [--out FILE]

Prints one JSON object per configuration (and writes them all to --out), each with the
machine (bench/machine.py: the load average when that configuration's timings started
and ended) and the command. FLOPs per step come from XLA's cost analysis of the compiled
train step; utilisation is reported against the device's peak where it is known.
Dispatch overhead is measured as the time of a trivial jitted call, for comparison with
the step time (a step dominated by its matmuls has overhead << step time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from machine import describe, load_average  # noqa: E402  (bench/machine.py)

from avloc_jax import model as models
from avloc_jax.common import io, parallel
from avloc_jax.data.records import Dataset, DatasetMetadata  # noqa: E402
from avloc_jax.engine import train  # noqa: E402
from configs import default  # noqa: E402

SHAPES = {
    "ave": dict(snippets=10, visual_dim=512, audio_dim=128, num_classes=28),
    "activitynet": dict(snippets=128, visual_dim=2048, audio_dim=128, num_classes=100),
}
# Dense peak FLOP/s by device kind and compute dtype (vendor figures), for utilisation.
PEAK_FLOPS = {
    ("NVIDIA H200", "bfloat16"): 989e12,
    ("NVIDIA H200", "float32"): 67e12,
    ("NVIDIA H100 80GB HBM3", "bfloat16"): 989e12,
    ("NVIDIA H100 80GB HBM3", "float32"): 67e12,
    ("NVIDIA A100-SXM4-80GB", "bfloat16"): 312e12,
    ("NVIDIA A100-SXM4-80GB", "float32"): 19.5e12,
    ("TPU v4", "bfloat16"): 275e12,
    ("TPU v5 lite", "bfloat16"): 197e12,
}


def machine_info(load_at_start: list[float] | None) -> dict:
    """bench/machine.py's description with JAX (measured after a configuration's timings;
    the load when they started and ended), and the backend and its device kind."""
    return {
        **describe(load_at_start, with_jax=True),
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
    }


def peak_memory_bytes() -> dict:
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return {"device_peak_bytes": int(stats["peak_bytes_in_use"])}
    # CPU backend: no device allocator stats; the process's peak RSS bounds it.
    return {"host_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def dispatch_overhead_seconds(repeats: int = 200) -> float:
    tiny = jax.jit(lambda x: x + 1)
    x = jnp.zeros(())
    tiny(x).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tiny(x).block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_flops_per_second(dtype: str, repeats: int = 20) -> float:
    """The device's achieved rate on this model's dominant matmul shape (the visual
    embedding of an ActivityNet-shape batch: [32*128, 2048] x [2048, 256])."""
    a = jnp.ones((32 * 128, 2048), dtype)
    b = jnp.ones((2048, 256), dtype)
    dot = jax.jit(lambda a, b: a @ b)
    dot(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / statistics.median(times)


def bench_one(shape_name: str, batch_size: int, dtype: str, steps: int) -> dict:
    shape = SHAPES[shape_name]
    config = default.get_config()
    config.model.dtype = dtype
    config.model.embed_dim = 256 if shape_name == "activitynet" else 128
    config.train.batch_size = batch_size
    meta = DatasetMetadata(
        name=shape_name,
        task="detection",
        class_names=tuple(f"c{i}" for i in range(shape["num_classes"])),
        visual_dim=shape["visual_dim"],
        audio_dim=shape["audio_dim"],
    )
    dataset = Dataset(metadata=meta, splits={})
    mesh = parallel.make_mesh()
    model = models.build_model(config.model, meta.num_classes)
    tx, schedule = train.make_optimizer(config.train)
    state = train.create_train_state(model, tx, dataset, config.seed, parallel.replicated(mesh))
    _, step_fn, _ = train.make_train_step(model, tx, config.loss, schedule, mesh)

    rng = np.random.default_rng(0)
    t = shape["snippets"]
    batch = {
        "visual": rng.random((batch_size, t, shape["visual_dim"]), np.float32),
        "audio": rng.random((batch_size, t, shape["audio_dim"]), np.float32),
        "mask": np.ones((batch_size, t), bool),
        "labels": np.eye(shape["num_classes"], dtype=np.float32)[
            rng.integers(shape["num_classes"], size=batch_size)
        ],
    }
    batch = parallel.to_global(batch, parallel.batch_sharded(mesh))

    start = time.perf_counter()
    compiled = step_fn.lower(state, batch).compile()
    compile_seconds = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")

    state, metrics = compiled(state, batch)  # warm-up
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    peak = PEAK_FLOPS.get((jax.devices()[0].device_kind, dtype))
    matmul_rate = matmul_flops_per_second(dtype)
    result = {
        "shape": shape_name,
        **shape,
        "batch_size": batch_size,
        "dtype": dtype,
        "embed_dim": config.model.embed_dim,
        "params": parallel.tree_size(state.params),
        "compile_seconds": round(compile_seconds, 3),
        "step_seconds_median": median,
        "step_seconds_min": min(times),
        "videos_per_second": batch_size / median,
        "flops_per_step": flops,
        "achieved_flops_per_second": flops / median,
        "utilisation_of_peak": (flops / median / peak) if peak else None,
        # Profile summary: the step's FLOPs at the device's measured matmul rate, as a share
        # of the step time. Near 1 means the step is matmul-bound, not dispatch-bound.
        "matmul_reference_flops_per_second": matmul_rate,
        "step_time_explained_by_matmul_rate": (flops / matmul_rate) / median,
        **peak_memory_bytes(),
    }
    return result


def pipeline_throughput(shape_name: str, batch_size: int, num_batches: int = 30) -> dict:
    """Videos/s that the host input pipeline (grain, snippet sampling, padding) delivers
    from in-memory records of the given shape (videos 1x to 3x the sampled length)."""
    from avloc_jax.data import input_pipeline

    shape = SHAPES[shape_name]
    rng = np.random.default_rng(0)
    records = []
    for i in range(256):
        length = int(rng.integers(shape["snippets"], 3 * shape["snippets"] + 1))
        records.append(
            {
                "video_id": f"v{i}",
                "visual": rng.random((length, shape["visual_dim"]), np.float32),
                "audio": rng.random((length, shape["audio_dim"]), np.float32),
                "labels": np.eye(shape["num_classes"], dtype=np.float32)[i % shape["num_classes"]],
            }
        )
    batches = input_pipeline.train_batches(
        records, batch_size=batch_size, seed=0, num_snippets=shape["snippets"], sampling="random"
    )
    next(batches)  # start-up (threads) is not throughput
    start = time.perf_counter()
    for _ in range(num_batches):
        next(batches)
    elapsed = time.perf_counter() - start
    return {
        "pipeline_shape": shape_name,
        "pipeline_batch_size": batch_size,
        "pipeline_videos_per_second": num_batches * batch_size / elapsed,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", default="ave,activitynet")
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    command = " ".join([os.path.basename(sys.executable)] + sys.argv)
    dispatch = dispatch_overhead_seconds()
    results = []
    for shape_name in args.shapes.split(","):
        for batch_size in map(int, args.batch_sizes.split(",")):
            for dtype in args.dtypes.split(","):
                load_start = load_average()  # before this configuration's timings
                figures = bench_one(shape_name, batch_size, dtype, args.steps)
                if dtype == args.dtypes.split(",")[0]:
                    figures.update(pipeline_throughput(shape_name, batch_size))
                result = {
                    "machine": machine_info(load_start),  # the load when they ended
                    "command": command,
                    "dispatch_overhead_seconds": dispatch,
                    **figures,
                }
                print(json.dumps(result), flush=True)
                results.append(result)
    if args.out:
        io.atomic_write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
