"""ActivityNet1.2 (W-TALC I3D features plus VGGish audio): 100 classes, untrimmed.

  avloc build-data activitynet12 --data-dir ~/tensorflow_datasets --manual-dir /path/to/files
  avloc train --config=configs/activitynet12.py --workdir=runs/anet \\
      --config.data.data_dir=~/tensorflow_datasets
Detection mAP at tIoU 0.5:0.05:0.95 (the official ActivityNet protocol).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.name = "activitynet12"
    config.data.num_snippets = 64  # sampled snippets per training video (W-TALC practice)
    config.data.eval_buckets = ()

    config.model.embed_dim = 256
    config.model.attention_window = 4

    config.train.num_steps = 10000
    config.train.batch_size = 32
    config.train.learning_rate = 1e-3
    config.eval.every_steps = 1000
    config.eval.batch_size = 32

    config.localization.class_threshold = 0.1
    config.localization.top_n = 100
    return config
