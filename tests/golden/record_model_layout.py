"""Records the model's parameter layout, so that a checkpoint written by an older version is
known to load into the current model (tests/test_model_layout.py).

Written once by the model of commit "model layout fixture" (before `AVLocModel` took its
fusion and head as submodules) and kept: the test compares today's model against it.

    python tests/golden/record_model_layout.py      # rewrites model_layout.json + checkpoint

What is recorded, for a tiny model (DIMS) built by `build_model(config.model, C)` from the
default config with each of VARIANTS' overrides:

* every parameter's path and shape: a checkpoint restores into a model only if these
  match (orbax restores by path);
* per parameter, the sum and the sum of |x| of its initial values (`init` with
  jax.random.key(0)): flax derives each module's init random stream from its path, so a
  renamed module changes these numbers (and so the regression golden) even when its
  shape does not;
* for the default variant, an orbax checkpoint of the initial parameters
  (`model_checkpoint/`, `{"params": ...}` as in the engine's TrainState) and the model's
  outputs on fixed inputs: the test restores that checkpoint into today's model and
  checks that it computes the same function.

Only re-record when the layout is *meant* to change, and then give old checkpoints a
parameter-path migration and say so in the commit.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LAYOUT = HERE / "model_layout.json"
CHECKPOINT = HERE / "model_checkpoint"

# A tiny model: B videos of T snippets, visual / audio feature sizes, C classes, embed d.
DIMS = {"batch": 2, "snippets": 6, "visual_dim": 6, "audio_dim": 4, "classes": 3, "embed_dim": 8}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "concat": {"fusion": "concat"},
    "visual": {"fusion": "visual"},
    "audio": {"fusion": "audio"},
    "softmax_bg": {"head": "softmax_bg"},
    "concat_softmax_bg": {"fusion": "concat", "head": "softmax_bg"},
    "visual_softmax_bg": {"fusion": "visual", "head": "softmax_bg"},
    "audio_softmax_bg": {"fusion": "audio", "head": "softmax_bg"},
    "head_norm_layernorm": {"head_norm": "layernorm"},
    "head_norm_video_rms": {"head_norm": "video_rms"},
    "concat_video_rms": {"fusion": "concat", "head_norm": "video_rms"},
    "ungated_merge_layernorm": {"attention_gate": False, "merge": "layernorm"},
    "distance_bias_2_heads": {"distance_bias": True, "num_heads": 2, "attention_window": 0},
    "skip_none_tanh": {"skip": "none", "merge": "tanh"},
    "stages3_residual": {"num_stages": 3, "skip": "residual"},
    "gate_frozen": {"attention_gate_frozen": True},
    "no_conv": {"conv_kernel": 0},
}


def inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """visual [B, T, Dv], audio [B, T, Da], mask [B, T] (the second video 2 snippets short)."""
    rng = np.random.default_rng(0)
    shape = (DIMS["batch"], DIMS["snippets"])
    visual = rng.normal(size=shape + (DIMS["visual_dim"],)).astype(np.float32)
    audio = rng.normal(size=shape + (DIMS["audio_dim"],)).astype(np.float32)
    mask = np.ones(shape, bool)
    mask[1, -2:] = False
    return visual, audio, mask


def build(overrides: dict[str, Any]) -> Any:
    """The model the default config describes, tiny, without dropout, with `overrides`."""
    sys.path.insert(0, str(REPO))
    from avloc_jax import model as models
    from configs import default

    model_config = default.get_config().model
    model_config.update({"embed_dim": DIMS["embed_dim"], "dropout_rate": 0.0, **overrides})
    return models.build_model(model_config, DIMS["classes"])


def init_params(model: Any) -> Any:
    import jax

    return model.init(jax.random.key(0), *inputs())["params"]


def describe(params: Any) -> dict[str, dict[str, Any]]:
    """{"a/b/kernel": {"shape": [...], "sum": s, "abs_sum": a}} over every parameter."""
    import jax

    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        value = np.asarray(leaf, np.float64)
        out[name] = {
            "shape": list(value.shape),
            "sum": float(value.sum()),
            "abs_sum": float(np.abs(value).sum()),
        }
    return dict(sorted(out.items()))


def outputs(model: Any, params: Any) -> dict[str, list]:
    result = model.apply({"params": params}, *inputs())
    return {key: np.asarray(value).tolist() for key, value in sorted(result.items())}


def main() -> None:
    import orbax.checkpoint as ocp

    layout = {name: describe(init_params(build(over))) for name, over in VARIANTS.items()}
    model = build(VARIANTS["default"])
    params = init_params(model)
    payload = {
        "dims": DIMS,
        "variants": VARIANTS,
        "layout": layout,
        "default_outputs": outputs(model, params),
    }
    tmp_layout = LAYOUT.with_suffix(".json.tmp")
    tmp_layout.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    tmp_checkpoint = CHECKPOINT.with_name(CHECKPOINT.name + ".tmp")
    shutil.rmtree(tmp_checkpoint, ignore_errors=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_checkpoint.absolute(), {"params": params})
    checkpointer.wait_until_finished()
    shutil.rmtree(CHECKPOINT, ignore_errors=True)
    tmp_checkpoint.replace(CHECKPOINT)
    tmp_layout.replace(LAYOUT)
    print(f"wrote {LAYOUT} and {CHECKPOINT}")


if __name__ == "__main__":
    main()
