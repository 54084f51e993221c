"""ActivityNet1.2 with the method as METHOD_NOTES writes it (configs/paper.py):
configs/activitynet12.py, but ungated attention, LayerNorm merge, class_argmax
pseudo-labels and a full-weight bottom-k L_rel term.

  avloc train --config=configs/paper_activitynet12.py --workdir=runs/anet_paper \\
      --config.data.data_dir=~/tensorflow_datasets
"""

from configs import activitynet12, paper


def get_config():
    return paper.as_written(activitynet12.get_config())
