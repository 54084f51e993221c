"""Users' own videos: I3D (1024-d RGB, or 2048-d RGB + flow) + VGGish (128-d) features from
`avloc extract-features`, packaged by `avloc build-data generic` (README "Run on your own
videos", docs/extraction.md). The settings are ActivityNet1.2's (`configs/activitynet12.py`):
untrimmed videos on the same 0.64-s snippet grid.

  avloc build-data generic --name mine --data-dir D --gt gt.json \\
      --visual features/visual --audio features/audio
  avloc train --config=configs/generic.py --workdir=runs/mine --config.data.data_dir=D
"""

from configs import activitynet12


def get_config():
    config = activitynet12.get_config()
    config.data.name = "generic"
    return config
