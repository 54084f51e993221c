"""AVE with the method as METHOD_NOTES writes it (configs/paper.py): configs/ave.py, but
ungated attention, LayerNorm merge, class_argmax pseudo-labels and a full-weight
bottom-k L_rel term (configs/ave.py sets that weight to 0; docs/method.md).

  avloc train --config=configs/paper_ave.py --workdir=runs/ave_paper \\
      --config.data.data_dir=~/tensorflow_datasets
"""

from configs import ave, paper


def get_config():
    return paper.as_written(ave.get_config())
