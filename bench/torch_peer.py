"""PyTorch peers of the extractor networks, for `bench/extract_speed.py --peer torch`.

Written here from the published architectures, not copied from any repository:

* `InceptionI3d`: the Inflated Inception-v1 of Carreira & Zisserman (CVPR 2017) in the
  module layout of the PyTorch port whose checkpoints (``rgb_imagenet.pt``,
  ``flow_imagenet.pt``) `avloc convert-weights` reads: top-level modules ``Conv3d_1a_7x7``
  ... ``Mixed_5c`` and ``logits``, each convolution a ``Unit3D`` holding ``conv3d`` (no
  bias, except the logits) and ``bn`` (BatchNorm3d, eps 1e-3), inception branches
  ``b0, b1a, b1b, b2a, b2b, b3b``. TensorFlow-style 'SAME' padding: per dimension,
  computed from the input size, zeros, the smaller half in front; max pools pad with
  zeros the same way. NCDHW, as PyTorch's Conv3d wants it.
* `VGG`: AudioSet's VGGish (Hershey et al., ICASSP 2017) in the torchvggish layout
  (``features`` = the conv/ReLU/pool stack, ``embeddings`` = 4096-4096-128 with ReLUs;
  the 512 x 6 x 4 map is flattened in (h, w, c) order, the TensorFlow order).

Both load the state dicts that `avloc_jax.extraction.convert` converts, so one state dict
gives the Flax and the torch network the same weights. The architecture tables (block
widths, padding rule, BatchNorm epsilon, VGGish layer widths) are read from the Flax
modules, which own them; this module only needs torch (the ``bench`` extra) and numpy.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from avloc_jax.extraction import i3d as flax_i3d  # noqa: E402
from avloc_jax.extraction import vggish as flax_vggish  # noqa: E402

Triple = tuple[int, int, int]


def _same_pad(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """Zero-pads the D, H, W axes of NCDHW ``x`` for a TensorFlow 'SAME' window."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):  # F.pad: last dim first
        pads.extend(flax_i3d.same_padding(int(size), k, s))
    return F.pad(x, pads) if any(pads) else x


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel: Triple, stride: Triple):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.pool = nn.MaxPool3d(kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(_same_pad(x, self.kernel, self.stride))


class Unit3D(nn.Module):
    """'SAME'-padded Conv3d -> BatchNorm3d -> ReLU (the logits: conv with bias only)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        batch_norm: bool = True,
        bias: bool = False,
        activation: bool = True,
    ):
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=bias)
        self.bn = (
            nn.BatchNorm3d(out_channels, eps=flax_i3d.BN_EPSILON, momentum=0.01)
            if batch_norm
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    """1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | 3x3x3 max pool -> 1x1, concatenated."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(in_channels, w0)
        self.b1a = Unit3D(in_channels, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))],
            dim=1,
        )


class InceptionI3d(nn.Module):
    """I3D: frames NCDHW [B, C, 16, 224, 224] in [-1, 1] -> features [B, 1024] (the
    [2, 7, 7] average pool of Mixed_5c); `logits` gives the class scores."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        channels = 192
        self.blocks: list[str] = []
        for name, widths in flax_i3d.INCEPTION_BLOCKS:
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
                self.blocks.append("MaxPool3d_4a_3x3")
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
                self.blocks.append("MaxPool3d_5a_2x2")
            module = InceptionModule(channels, widths)
            self.add_module(name, module)
            self.blocks.append(name)
            channels = module.out_channels
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=(1, 1, 1))
        self.logits = Unit3D(channels, num_classes, batch_norm=False, bias=True, activation=False)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv3d_1a_7x7(x)
        x = self.MaxPool3d_2a_3x3(x)
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        x = self.MaxPool3d_3a_3x3(x)
        for name in self.blocks:
            x = getattr(self, name)(x)
        return self.avg_pool(x)  # [B, 1024, 1, 1, 1] for a 16 x 224 x 224 snippet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled(x).flatten(1)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pooled(x)
        return pooled.flatten(1), self.logits(pooled).flatten(1)


class VGG(nn.Module):
    """VGGish: log-mel examples [N, 96, 64] -> embeddings [N, 128] (ReLU after each of the
    three fully connected layers, as torchvggish)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for _, width, pool in flax_vggish._CONVS:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2, 2))
            channels = width
        self.features = nn.Sequential(*layers)
        fcs: list[nn.Module] = []
        size = channels * (flax_vggish.EXAMPLE_FRAMES // 16) * (flax_vggish.NUM_MEL_BINS // 16)
        for _, width in flax_vggish._FCS:
            fcs += [nn.Linear(size, width), nn.ReLU(inplace=True)]
            size = width
        self.embeddings = nn.Sequential(*fcs)

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        x = self.features(examples.unsqueeze(1))  # NCHW [N, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).contiguous()  # (h, w, c) order before flattening
        return self.embeddings(x.flatten(1))


# ----------------------------------------------------------------------------- weights


def random_state_dict(model: nn.Module, seed: int, gain: float) -> dict[str, np.ndarray]:
    """Seeded random float32 weights for every tensor of ``model.state_dict()``.

    Each tensor has its own generator, seeded by (seed, crc32(key)). Conv and linear
    weights are normals of variance ``gain / fan_in`` (so activations keep their scale
    through the ReLU stack and a 1e-4 tolerance means something); BatchNorm scales and
    running variances are uniform in [0.5, 1.5]; biases and running means in
    [-0.1, 0.1]; ``num_batches_tracked`` counters 0."""
    state: dict[str, np.ndarray] = {}
    for key, tensor in model.state_dict().items():
        shape = tuple(tensor.shape)
        if key.endswith("num_batches_tracked"):
            state[key] = np.zeros(shape, np.int64)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key.endswith("weight") and len(shape) >= 2:
            value = rng.standard_normal(shape) * np.sqrt(gain / int(np.prod(shape[1:])))
        elif key.endswith(("bn.weight", "running_var")):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.uniform(-0.1, 0.1, shape)
        state[key] = value.astype(np.float32)
    return state


def load_numpy_state(model: nn.Module, state: Mapping[str, np.ndarray]) -> nn.Module:
    """Loads a numpy state dict (every key, strictly) and puts the model in eval mode."""
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def i3d_peer(
    modality: str, state: Mapping[str, np.ndarray] | None = None, seed: int = 0
) -> tuple[InceptionI3d, dict[str, np.ndarray]]:
    """(torch I3D in eval mode, its numpy state dict): ``state`` if given (a checkpoint
    read by `convert.read_state_dict`), else seeded random weights."""
    channels = flax_i3d.MODALITY_CHANNELS[modality]
    num_classes = int(np.shape(state["logits.conv3d.weight"])[0]) if state is not None else 400
    model = InceptionI3d(num_classes, in_channels=channels)
    if state is None:
        state = random_state_dict(model, seed, gain=1.3)
    return load_numpy_state(model, state), dict(state)


def vggish_peer(
    state: Mapping[str, np.ndarray] | None = None, seed: int = 0
) -> tuple[VGG, dict[str, np.ndarray]]:
    """(torch VGGish in eval mode, its numpy state dict), as `i3d_peer`."""
    model = VGG()
    if state is None:
        state = random_state_dict(model, seed, gain=2.0)
    return load_numpy_state(model, state), dict(state)


def frames_to_torch(snippets: np.ndarray) -> torch.Tensor:
    """Snippets NTHWC (uint8 pixels or float values in [-1, 1]) -> float32 NCDHW in
    [-1, 1], scaled as the JAX pipeline scales them (x * 2/255 - 1)."""
    x = torch.from_numpy(np.ascontiguousarray(snippets))
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) * (2.0 / 255.0) - 1.0
    return x.permute(0, 4, 1, 2, 3).contiguous()
