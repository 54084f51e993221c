"""THUMOS14 (W-TALC layout): 20 detection classes; train on validation, test on test.

  avloc build-data thumos14 --data-dir ~/tensorflow_datasets --manual-dir /path/to/files
  avloc train --config=configs/thumos14.py --workdir=runs/thumos \\
      --config.data.data_dir=~/tensorflow_datasets
Detection mAP at tIoU 0.1:0.1:0.7.
"""

from configs import default


def get_config():
    config = default.get_config()
    config.data.name = "thumos14"
    config.data.num_snippets = 320  # long videos: W-TALC samples up to 320-750 snippets
    config.data.eval_buckets = ()

    config.model.embed_dim = 256
    config.model.attention_window = 8

    config.train.num_steps = 10000
    config.train.batch_size = 16
    config.eval.every_steps = 1000
    config.eval.batch_size = 8

    config.localization.class_threshold = 0.2
    config.localization.top_n = 200
    return config
