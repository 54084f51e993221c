"""The AVE-flavoured semi-synthetic benchmark (docs/benchmark.md).

  avloc make-benchmark ave --out /tmp/bench/ave_src
  avloc build-data ave --data-dir /tmp/bench/data --manual-dir /tmp/bench/ave_src
  avloc train --config=configs/benchmark_ave.py --workdir=/tmp/bench/ave_run \
      --config.data.data_dir=/tmp/bench/data
Segment accuracy over every test snippet; model selection on val. Sized for a 2-core CPU.
"""

from configs import ave


def get_config():
    config = ave.get_config()
    config.data.weak_setting = True  # weak setting: + the 178 background-only videos (real audio)
    config.model.embed_dim = 64
    # Host-fed batches: on a CPU the device-resident scan is slower (docs/performance.md).
    config.data.device_resident = False
    config.train.num_steps = 600
    config.train.batch_size = 64
    config.train.learning_rate = 3e-4
    config.train.warmup_steps = 50
    config.loss.consistency_warmup_steps = 150
    config.eval.every_steps = 200
    config.train.checkpoint_every_steps = 200
    return config
