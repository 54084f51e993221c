"""The networks of the extraction pipeline: I3D RGB (and flow) and VGGish, jitted once per
fixed batch shape and sharded over this process's devices.

`load_extractor` builds a `FeatureExtractor` from the weights `avloc convert-weights`
wrote; tests and benchmarks inject small stand-ins with the same call signatures.
`FeatureExtractor.identity` is what the features depend on besides the video: the cache
compares it (`records`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.extraction import align, media, records

PIPELINE_VERSION = 1  # bumped when the features of the same video and weights change
I3D_FEATURES = 1024
VGGISH_FEATURES = 128
DEFAULT_BATCH_SIZE = 8  # I3D snippets per forward pass (and per decoded chunk)
DEFAULT_AUDIO_BATCH_SIZE = 16  # VGGish examples (0.96 s each) per forward pass

Network = Callable[[np.ndarray], np.ndarray]


def _as_variables(variables: Any) -> Any:
    """Flax variables {"params": ...} from either variables or a bare parameter tree."""
    if isinstance(variables, Mapping) and "params" in variables:
        return variables
    return {"params": variables}


class ShardedApply:
    """A jitted forward pass over a fixed batch, sharded over all local devices.

    ``__call__(x)`` takes any number of rows [n, ...] (n >= 1), runs them in batches of
    `batch_size` rows (the last padded with zeros; its padding rows are dropped) and
    returns the outputs [n, D] as NumPy. Batches are dispatched before the first result
    is read, so host-to-device copies overlap compute.

    Args:
      apply_fn: (variables, x [B, ...]) -> [B, D], e.g. a Flax module's ``apply``.
      variables: its variables (or a bare parameter tree), replicated on every device.
      batch_size: rows per forward pass, rounded up to a multiple of the device count.
      preprocess: applied to x on the device before `apply_fn` (e.g. uint8 -> [-1, 1],
        so that 4x fewer bytes cross to the device).
    """

    def __init__(
        self,
        apply_fn: Callable[[Any, Any], Any],
        variables: Any,
        batch_size: int,
        preprocess: Callable[[Any], Any] | None = None,
    ):
        import jax
        from jax.sharding import Mesh

        from avloc_jax.common import parallel

        # This process's devices only: under jax.distributed each process extracts its
        # own videos, so no forward pass may wait for another process.
        mesh = Mesh(np.asarray(jax.local_devices()), (parallel.DATA_AXIS,))
        devices = mesh.devices.size
        self.batch_size = max(devices, -(-int(batch_size) // devices) * devices)
        self._rows = parallel.batch_sharded(mesh)
        replicated = parallel.replicated(mesh)
        self._variables = jax.device_put(_as_variables(variables), replicated)
        prep = preprocess or (lambda x: x)
        self._forward = jax.jit(
            lambda v, x: apply_fn(v, prep(x)),
            in_shardings=(replicated, self._rows),
            out_shardings=self._rows,
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import jax

        x = np.asarray(x)
        if len(x) == 0:
            raise ValueError("ShardedApply needs at least one row")
        pending = []
        for start in range(0, len(x), self.batch_size):
            rows = x[start : start + self.batch_size]
            count = len(rows)
            if count < self.batch_size:
                pad = np.zeros((self.batch_size - count, *rows.shape[1:]), rows.dtype)
                rows = np.concatenate([rows, pad])
            pending.append(
                (self._forward(self._variables, jax.device_put(rows, self._rows)), count)
            )
        return np.concatenate([np.asarray(y)[:count] for y, count in pending]).astype(np.float32)


def image_network(
    apply_fn: Callable[[Any, Any], Any], variables: Any, batch_size: int
) -> ShardedApply:
    """An I3D-like network fed uint8 RGB snippets [B, 16, S, S, 3]; the pixels are scaled
    to [-1, 1] (x / 127.5 - 1) on the device."""
    import jax.numpy as jnp

    return ShardedApply(
        apply_fn,
        variables,
        batch_size,
        preprocess=lambda x: x.astype(jnp.float32) * (2.0 / 255.0) - 1.0,
    )


@dataclasses.dataclass
class FeatureExtractor:
    """The networks of the pipeline, injectable (tests use small stand-ins).

    rgb:      uint8 RGB snippets [B, 16, S, S, 3] -> [B, rgb_dim] (e.g. `image_network`)
    audio:    log-mel examples [N, 96, 64] -> [N, audio_dim]
    log_mel:  (float32 waveform [S] at 16 kHz, sample rate) -> examples [N, 96, 64]
    flow:     optional; flow snippets [B, 16, S, S, 2] in [-1, 1] -> [B, flow_dim]
    weights_id: identifies the weights (part of the cache key)
    short_side / crop_size: frame preprocessing (256 / 224 for I3D)
    batch_size: snippets per decoded chunk
    settings: other settings that change the features (part of the cache key)
    """

    rgb: Network
    audio: Network
    log_mel: Callable[[np.ndarray, int], np.ndarray]
    rgb_dim: int
    audio_dim: int
    weights_id: str
    flow: Network | None = None
    flow_dim: int = 0
    short_side: int = media.SHORT_SIDE
    crop_size: int = media.CROP_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def visual_dim(self, flow: bool) -> int:
        return self.rgb_dim + (self.flow_dim if flow else 0)

    def identity(self, flow: bool) -> dict[str, Any]:
        """What the features depend on besides the video: compared by the cache."""
        return {
            "pipeline_version": PIPELINE_VERSION,
            "weights": self.weights_id,
            "flow": bool(flow),
            "fps": align.FPS,
            "snippet_frames": align.SNIPPET_FRAMES,
            "short_side": self.short_side,
            "crop_size": self.crop_size,
            "sample_rate": align.SAMPLE_RATE,
            "visual_dim": self.visual_dim(flow),
            "audio_dim": self.audio_dim,
            **dict(self.settings),
        }


def weights_id(directories: Sequence[Path]) -> str:
    """A short id of converted weights: the content keys of every file under them."""
    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(directory.parent)).encode())
            digest.update(records.file_key(path).encode())
    return digest.hexdigest()[:16]


def load_extractor(
    weights_dir: Path | str,
    *,
    flow: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    audio_batch_size: int = DEFAULT_AUDIO_BATCH_SIZE,
    vggish_postprocess: bool = False,
) -> FeatureExtractor:
    """I3D RGB (and flow) and VGGish from the orbax checkpoints that `avloc
    convert-weights` writes under WEIGHTS_DIR/{i3d_rgb, i3d_flow, vggish}/.

    `vggish_postprocess` adds AudioSet's PCA + 8-bit quantisation (needs the PCA file
    converted too); off by default: the raw 128-d embeddings."""
    weights_dir = Path(weights_dir)
    if flow:  # fail on a missing OpenCV before loading anything
        from avloc_jax.extraction import flow as optical_flow

        optical_flow.tvl1()
    if not weights_dir.is_dir():
        raise FileNotFoundError(
            f"weights folder {weights_dir} does not exist: convert the public checkpoints "
            "with `avloc convert-weights` first (docs/extraction.md)"
        )
    needed = ["i3d_rgb", "vggish"] + (["i3d_flow"] if flow else [])
    needed += ["vggish_pca"] if vggish_postprocess else []
    missing = [name for name in needed if not (weights_dir / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"weights folder {weights_dir} lacks {', '.join(missing)}/: convert the public "
            "checkpoints into it with `avloc convert-weights` first (docs/extraction.md)"
        )
    # Imported here: the networks are only needed for real extraction; the rest of the
    # pipeline runs with injected stand-ins (tests) without building them.
    from avloc_jax.extraction import i3d, vggish

    rgb_module, rgb_variables = i3d.load_i3d(weights_dir, "rgb")
    audio_module, audio_variables = vggish.load_vggish(weights_dir, postprocess=vggish_postprocess)
    used = [weights_dir / "i3d_rgb", weights_dir / "vggish"]
    flow_network = None
    if flow:
        flow_module, flow_variables = i3d.load_i3d(weights_dir, "flow")
        flow_network = ShardedApply(flow_module.apply, flow_variables, batch_size)
        used.append(weights_dir / "i3d_flow")
    if vggish_postprocess:
        used.append(weights_dir / "vggish_pca")
    return FeatureExtractor(
        rgb=image_network(rgb_module.apply, rgb_variables, batch_size),
        audio=ShardedApply(audio_module.apply, audio_variables, audio_batch_size),
        log_mel=vggish.log_mel_examples,
        rgb_dim=I3D_FEATURES,
        audio_dim=VGGISH_FEATURES,
        weights_id=weights_id(used),
        flow=flow_network,
        flow_dim=I3D_FEATURES if flow else 0,
        batch_size=batch_size,
        settings={"vggish_postprocess": bool(vggish_postprocess)},
    )
