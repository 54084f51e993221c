"""Defaults shared by every experiment; the dataset configs override what differs.

Public keys (documented in the README): data.data_dir, data.name, train.num_steps,
train.batch_size, train.learning_rate, eval.every_steps, model.fusion,
model.num_stages, model.head, seed. Feature sizes and class lists are not here: they
come from the dataset's metadata.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.name = "demo"  # demo | ave | activitynet12 | thumos14 | generic
    config.data.data_dir = ""  # where `avloc build-data` wrote the TFDS dataset
    config.data.num_snippets = 64  # training-time snippet sampling length
    config.data.sampling = "random"  # random | uniform
    config.data.eval_buckets = ()  # padded lengths for evaluation; () = derived from the data
    config.data.val_fraction = (
        0.1  # held-out part of training used as val where a dataset has no val split
    )
    config.data.weak_setting = False  # AVE: add the 178 background-only videos to train
    config.data.device_resident = False  # keep the whole training split on the devices

    config.model = ml_collections.ConfigDict()
    config.model.fusion = "cross_attention"  # cross_attention | concat | visual | audio
    config.model.head = "openmax"  # openmax | softmax_bg
    config.model.embed_dim = 128
    config.model.num_stages = 2
    config.model.num_heads = 1
    config.model.skip = "dense"  # dense | residual | none
    config.model.merge = "none"  # none | layernorm | tanh (docs/method.md)
    config.model.attention_gate = True  # zero-initialised per-channel gate on the attended term
    config.model.attention_gate_frozen = False  # control: gate held at 0, i.e. no attention
    config.model.attention_window = 1  # ±snippets each snippet attends to; 0 = global attention
    config.model.distance_bias = False
    config.model.conv_kernel = 3  # temporal embedding; 0 disables it
    config.model.dropout_rate = 0.2
    config.model.dtype = "float32"  # float32 | bfloat16 (params stay float32)

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
    config.train.schedule = "cosine"  # cosine | constant
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

    from avloc_jax.evaluation import localization

    config.localization = localization.default_config()

    config.distributed = ml_collections.ConfigDict()
    config.distributed.initialize = False  # call jax.distributed.initialize() (multi-host)
    return config
