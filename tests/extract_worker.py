"""One `avloc extract-features` process with the stand-in networks of media_helpers (a
random-weight projection included), used by tests/test_extract_processes.py.

  python tests/extract_worker.py [--process-id I --num-processes P --port N]
      [--delay SECONDS] -- EXTRACT-FEATURES ARGS...

With P > 1 it joins a `jax.distributed` job on localhost (one CPU device per process)
before running the command, as a launcher would; the command then finds
jax.distributed started and takes its shard from the process index. --delay sleeps
that long before each video is written, so that a test can kill the run mid-way.
Exits with the command's status.
"""

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    os.environ["JAX_PLATFORMS"] = "cpu"
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))

    import jax

    if args.num_processes > 1:
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{args.port}",
            num_processes=args.num_processes,
            process_id=args.process_id,
        )

    import media_helpers as mh

    from avloc_jax.cli import main as cli
    from avloc_jax.extraction import pipeline, records

    pipeline.load_extractor = lambda *a, **k: mh.standin_extractor(rgb_extra=6)
    if args.delay:
        save_array = records.save_array

        def slow_save(path, array):
            time.sleep(args.delay / 2)
            return save_array(path, array)

        pipeline.save_array = slow_save  # type: ignore[assignment]
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return cli.main(["extract-features", *command])


if __name__ == "__main__":
    sys.exit(main())
