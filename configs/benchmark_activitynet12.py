"""The ActivityNet1.2-flavoured semi-synthetic benchmark (docs/benchmark.md).

  avloc make-benchmark activitynet12 --out /tmp/bench/anet_src
  avloc build-data activitynet12 --data-dir /tmp/bench/data --manual-dir /tmp/bench/anet_src
  avloc train --config=configs/benchmark_activitynet12.py --workdir=/tmp/bench/run \
      --config.data.data_dir=/tmp/bench/data
Sized for a 2-core CPU (a few minutes per run). Config-level fixes relative to
configs/activitynet12.py, from the demo and benchmark findings (docs/results.md):
attention window ±1 (near-action visual context punishes wide windows), lr 3e-4 (1e-3
overfits small training sets after ~100 steps).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.name = "activitynet12"
    config.data.num_snippets = 64
    config.data.val_fraction = (
        0.15  # held-out part of `training` (90 of 600 videos) for model selection
    )
    config.data.eval_buckets = (64, 128, 256, 384)

    config.model.embed_dim = 64
    config.model.attention_window = 1
    config.model.dropout_rate = 0.2

    config.train.num_steps = 600
    config.train.batch_size = 16
    config.train.learning_rate = 3e-4
    config.train.warmup_steps = 50
    config.train.log_every_steps = 100
    config.train.checkpoint_every_steps = 200
    config.loss.consistency_warmup_steps = 150
    config.eval.every_steps = 200
    config.eval.batch_size = 32

    config.localization.class_threshold = 0.1
    config.localization.top_n = 100
    return config
