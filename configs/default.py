"""Defaults shared by every experiment; the dataset configs override what differs.

This file is the single place where a config default lives: the library reads the config
it is given (no fallbacks), and configs/*.py only override. Which values each key allows
(its type, choices and bounds) is the library's schema, `avloc_jax.schema.SCHEMA`, whose
`validate()` checks every config before anything runs; tests/test_config.py checks that
the keys here are the schema's. `config_version` says which keys a saved config.json has;
older ones are upgraded by `avloc_jax.common.config_migration.migrate`.

Public keys (documented in the README): data.data_dir, data.name, train.num_steps,
train.batch_size, train.learning_rate, eval.every_steps, model.fusion,
model.num_stages, model.head, seed. Feature sizes and class lists are not here: they
come from the dataset's metadata.
"""

import ml_collections

from avloc_jax.common import config_migration

__all__ = ["demo_data_config", "get_config", "localization_config"]


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # Bumped (with a step in config_migration) whenever a key is added or changes meaning.
    config.config_version = config_migration.CURRENT_VERSION
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.name = "demo"  # one of avloc_jax.data.loading.DATASETS
    config.data.data_dir = ""  # where `avloc build-data` wrote the TFDS dataset
    # The TFDS build to open; "" = the only or "default" one (AVE: "weak" with weak_setting).
    config.data.builder_config = ""
    config.data.num_snippets = 64  # training-time snippet sampling length
    config.data.sampling = "random"  # a mode of avloc_jax/data/sampling.py
    config.data.eval_buckets = ()  # padded lengths for evaluation; () = derived from the data
    config.data.val_fraction = (
        0.1  # held-out part of training used as val where a dataset has no val split
    )
    config.data.weak_setting = False  # AVE: add the 178 background-only videos to train
    config.data.device_resident = False  # keep the whole training split on the devices
    config.data.demo = demo_data_config()  # read only when data.name == "demo"

    config.model = ml_collections.ConfigDict()
    config.model.fusion = "cross_attention"  # the model.* choices: avloc_jax/model
    config.model.head = "openmax"
    # Normalisation of the fused features in front of the head, the same for every fusion
    # (layernorm: per snippet; video_rms: per video, keeps snippet amplitudes).
    config.model.head_norm = "none"
    config.model.embed_dim = 128
    config.model.num_stages = 2
    config.model.num_heads = 1
    config.model.skip = "dense"
    config.model.merge = "none"  # docs/method.md
    config.model.attention_gate = True  # zero-initialised per-channel gate on the attended term
    config.model.attention_gate_frozen = False  # control: gate held at 0, i.e. no attention
    config.model.attention_window = 1  # ±snippets each snippet attends to; 0 = global attention
    config.model.distance_bias = False
    config.model.conv_kernel = 3  # temporal embedding; 0 disables it
    config.model.dropout_rate = 0.2
    config.model.dtype = "float32"  # of the computation; params stay float32

    config.loss = ml_collections.ConfigDict()
    config.loss.topk_ratio = 8.0  # r in k = max(1, floor(|V| / r))
    config.loss.mil_weight = 1.0
    config.loss.fg_weight = 1.0
    config.loss.rel_weight = 1.0
    config.loss.class_consistency_weight = 0.5
    config.loss.reliability_consistency_weight = 0.5
    config.loss.consistency_window = 2  # w: pseudo-labels from the posterior averaged over |δ| ≤ w
    config.loss.consistency_threshold = 0.5  # τ: confidence needed to use a pseudo-label
    # foreground_mass: fg/bg from μ̄, then the best labelled class; class_argmax: argmax over
    # labelled classes + bg (collapses μ when classes are confusable; docs/method.md).
    config.loss.pseudo_label_rule = "foreground_mass"
    # Weight of L_rel's bottom-k term for labelled videos: 1 asserts that every labelled video
    # holds background (wrong for fully covered clips), 0 leaves μ free to saturate at 1
    # where no background-only videos exist (docs/method.md).
    config.loss.rel_background_weight = 0.3
    config.loss.consistency_warmup_steps = 200

    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 2000
    config.train.batch_size = 16  # global batch, over all devices and processes
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 100
    config.train.schedule = "cosine"  # avloc_jax/optimizer.py
    config.train.weight_decay = 1e-4
    config.train.grad_clip_norm = 1.0
    config.train.log_every_steps = 50
    config.train.checkpoint_every_steps = 500
    config.train.keep_checkpoints = 2
    config.train.profile_steps = 0  # > 0: one profiler trace of that many steps, in W/profile

    config.eval = ml_collections.ConfigDict()
    config.eval.every_steps = 500
    config.eval.batch_size = 32
    config.eval.reliability_threshold = 0.5  # θ for AVE-style gated snippet labels
    # The validation metric that selects the best checkpoint; "" = the first evaluator's
    # standard one (average_mAP for detection, accuracy for AVE).
    config.eval.select = ""
    # Evaluators by name (avloc_jax/evaluation/evaluators.py); () = the dataset task's
    # standard one: "detection" for untrimmed datasets, "ave" for AVE.
    config.evals = ()

    config.localization = localization_config()

    config.distributed = ml_collections.ConfigDict()
    config.distributed.initialize = False  # call jax.distributed.initialize() (multi-host)
    return config


def localization_config() -> ml_collections.ConfigDict:
    """Every constant of the post-processing (ActivityNet values; THUMOS14 overrides some).

    The steps they control are described in avloc_jax/evaluation/localization.py.
    """
    config = ml_collections.ConfigDict()
    config.class_threshold = 0.1  # keep classes with video score >= this (else the top class)
    config.cas_smoothing = 0  # moving-average window in snippets over the CAS; 0/1 = off
    config.upsample = 24  # linear-interpolation factor u of the CAS before thresholding
    # 0.1 ... 0.9 on the normalised CAS
    config.thresholds = tuple(round(0.1 * i, 2) for i in range(1, 10))
    config.min_length_snippets = 0.0  # drop proposals shorter than this many snippets
    config.outer_margin = 0.25  # outer region on each side, as a fraction of the proposal length
    config.contrast_on = "normalized"  # CAS used for the outer-inner contrast
    config.video_score_weight = 0.2  # γ: weight of the video-level class score in the score
    config.nms = "soft"  # Gaussian soft-NMS
    config.soft_nms_sigma = 0.3  # Gaussian soft-NMS: weight exp(-iou² / sigma)
    config.nms_iou = 0.7  # hard NMS: suppress tIoU > this
    config.top_n = 100  # detections kept per video (0 = all)
    return config


def demo_data_config() -> ml_collections.ConfigDict:
    """The built-in demo dataset (avloc_jax/data/demo_data.py and synthetic_features.py)."""
    c = ml_collections.ConfigDict()
    c.num_videos = {"train": 480, "validation": 120, "test": 160}
    c.num_classes = 8
    c.pair_fraction = 0.5  # 4 classes in 2 visually identical pairs
    c.silent_fraction = 0.25  # 2 silent classes
    c.pair_visual_offset = 0.0  # how different the two visuals of a pair are (relative)
    c.min_seconds = 40
    c.max_seconds = 96
    c.visual_dim = 48
    c.audio_dim = 24
    c.visual_snippet_seconds = 1.0
    c.audio_snippet_seconds = 1.0
    c.max_misalignment_seconds = 0.0
    c.temporal_correlation = 0.7  # AR(1) coefficient of the feature noise
    c.max_instances = 3
    c.min_instance_seconds = 4
    c.background_only_fraction = 0.05
    c.visual_strength = 1.5
    c.audio_strength = 1.5
    c.context_strength = 0.7  # near-action visual context: looks like the action, no sound
    c.context_seconds = 4.0
    c.music_probability = 0.5  # unrelated background music over random stretches
    c.music_strength = 1.5
    c.scene_std = 0.6
    c.noise_std = 1.0
    return c
