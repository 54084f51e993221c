"""One process of a multi-process CPU training run (used by tests/test_multiprocess.py).

  python tests/multiprocess_worker.py --process-id I --num-processes P --port N \
      --devices-per-process D --workdir W

With P > 1 it joins a `jax.distributed` job on localhost (gloo CPU collectives). It
trains the tiny demo config for a few steps and, on process 0, prints the logged losses
as JSON. Every process writes the training-video indices it read to
W/read_indices_<I>.json, so the test can check that each read only its shard.
"""

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--devices-per-process", type=int, default=8)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices_per_process}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))

    import jax

    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{args.port}",
            num_processes=args.num_processes,
            process_id=args.process_id,
        )

    from demo_helpers import tiny_config

    from avloc_jax.data import loading
    from avloc_jax.engine import train

    read: list[int] = []  # every read, in order (prefetching included)
    original_load = loading.load_dataset  # what the engine's loading.open_dataset calls

    class RecordingSplit:
        """A training split that remembers which videos this process read."""

        def __init__(self, records):
            self._records = records
            # As TFDS-backed splits do, expose lengths, so the pipeline need not read every
            # video to learn them (those reads would not be training reads).
            self.lengths = [len(r["visual"]) for r in records]

        def __len__(self):
            return len(self._records)

        def __getitem__(self, index):
            read.append(int(index))
            return self._records[index]

    def load_recording(config):
        dataset = original_load(config)
        splits = dict(dataset.splits)
        splits[dataset.metadata.train_split] = RecordingSplit(splits[dataset.metadata.train_split])
        return type(dataset)(metadata=dataset.metadata, splits=splits)

    loading.load_dataset = load_recording
    config = tiny_config(num_steps=args.steps)
    config.train.log_every_steps = 1
    config.eval.every_steps = 1000
    train.train_and_evaluate(config, args.workdir)
    Path(args.workdir, f"read_indices_{args.process_id}.json").write_text(json.dumps(read))
    if jax.process_index() == 0:
        with open(os.path.join(args.workdir, "metrics.jsonl")) as f:
            events = [json.loads(line) for line in f]
        losses = [e["loss/total"] for e in events if e["event"] == "train"]
        print(
            json.dumps(
                {"devices": jax.device_count(), "processes": jax.process_count(), "losses": losses}
            )
        )


if __name__ == "__main__":
    main()
