"""Converting public PyTorch checkpoints into orbax checkpoints of the Flax extractors.

The framework is network-agnostic; each network registers, in `NETWORKS`, two functions
of its own module (imported lazily, by name, so this module never imports a network):

* a converter ``fn(state_dict: StateDict) -> variables``: the Flax variables tree
  ({"params": ...} and, for BatchNorm networks, "batch_stats") as numpy arrays, built by
  reading the reference parameters by name;
* a template ``fn(**template_kwargs) -> variables``: the same tree as
  jax.ShapeDtypeStruct (e.g. ``jax.eval_shape(module.init, ...)``).

`convert_state_dict` fails (`ConversionError`, naming the keys) when the converter reads
a key the file does not have, leaves a key of the file unread (`StateDict.skip` declares
a key deliberately unused, e.g. BatchNorm's ``num_batches_tracked``), or returns a tree
that differs from the template by a missing, extra or mis-shaped leaf.

On disk, WEIGHTS_DIR/<name>/ holds ``variables/`` (an orbax checkpoint) and
``weights.json`` (name, source file, its sha256, every leaf's shape). Each directory is
written under a temporary name and renamed into place, so no half-written one remains.

Reading ``.pth``/``.pt`` needs PyTorch, an optional extra (``pip install -e '.[convert]'``)
imported only here and only then. A ``.npz`` of the same keys is read with numpy alone: the
tests use it, and so can a user who exported the state dict elsewhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from avloc_jax.common.io import atomic_write_json

VARIABLES_DIR = "variables"
WEIGHTS_FILE = "weights.json"
FORMAT_VERSION = 1


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file and the keys."""


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """How to convert one network. Functions are "module:function" strings."""

    converter: str
    template: str
    template_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    reference_file: str = ""  # the public checkpoint a user downloads (for messages)


_VGGISH = "avloc_jax.extraction.vggish"
_I3D = "avloc_jax.extraction.i3d"

# name (the directory under WEIGHTS_DIR) -> spec
NETWORKS: dict[str, NetworkSpec] = {
    "vggish": NetworkSpec(
        f"{_VGGISH}:vggish_torch_to_flax", f"{_VGGISH}:vggish_template", {}, "vggish-10086976.pth"
    ),
    "vggish_pca": NetworkSpec(
        f"{_VGGISH}:vggish_pca_torch_to_flax",
        f"{_VGGISH}:vggish_pca_template",
        {},
        "vggish_pca_params-970ea276.pth",
    ),
    "i3d_rgb": NetworkSpec(
        f"{_I3D}:i3d_converter", f"{_I3D}:i3d_template", {"in_channels": 3}, "rgb_imagenet.pt"
    ),
    "i3d_flow": NetworkSpec(
        f"{_I3D}:i3d_converter", f"{_I3D}:i3d_template", {"in_channels": 2}, "flow_imagenet.pt"
    ),
}


class StateDict(Mapping[str, np.ndarray]):
    """A read-only state dict that records which keys were read.

    Reading a missing key raises `ConversionError` naming it (not KeyError: a converter
    must not silently fall back). `in` does not count as a read."""

    def __init__(self, arrays: Mapping[str, np.ndarray], source: str = "<state dict>"):
        self._arrays = dict(arrays)
        self.source = source
        self._read: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._arrays:
            raise ConversionError(
                f"{self.source}: reference parameter {key!r} is missing "
                f"(the file has {len(self._arrays)} keys; is it the right checkpoint?)"
            )
        self._read.add(key)
        return self._arrays[key]

    def __contains__(self, key: object) -> bool:
        return key in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def skip(self, *keys: str) -> None:
        """Declares keys deliberately not mapped (they must exist)."""
        for key in keys:
            self[key]

    def unread(self) -> list[str]:
        return sorted(set(self._arrays) - self._read)


def _resolve(reference: str) -> Callable[..., Any]:
    module_name, _, attr = reference.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def spec_for(name: str) -> NetworkSpec:
    if name not in NETWORKS:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(NETWORKS)}")
    return NETWORKS[name]


def template(name: str) -> Any:
    """The variables of network `name` as jax.ShapeDtypeStruct."""
    spec = spec_for(name)
    return _resolve(spec.template)(**spec.template_kwargs)


def _flat(tree: Any) -> dict[str, Any]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf for path, leaf in flat}


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def convert_state_dict(
    name: str, arrays: Mapping[str, np.ndarray], source: str = "<state dict>"
) -> dict[str, Any]:
    """Reference state dict (key -> numpy array) -> Flax variables of network `name`
    (numpy, the template's dtypes). Raises ConversionError on any unmapped reference
    parameter or unfilled/mis-shaped Flax leaf."""
    state = StateDict(arrays, source)
    variables = _resolve(spec_for(name).converter)(state)
    unread = state.unread()
    if unread:
        raise ConversionError(
            f"{source}: {len(unread)} reference parameter(s) not mapped to the Flax {name} "
            f"model: {_listing(unread)}"
        )
    expected = _flat(template(name))
    got = _flat(variables)
    problems = []
    missing = sorted(set(expected) - set(got))
    if missing:
        problems.append(f"Flax {name} parameters left unfilled: {_listing(missing)}")
    extra = sorted(set(got) - set(expected))
    if extra:
        problems.append(
            f"the converter produced parameters the Flax {name} model does not have: "
            f"{_listing(extra)}"
        )
    wrong = [
        f"{path} {tuple(np.shape(got[path]))} != {tuple(leaf.shape)}"
        for path, leaf in expected.items()
        if path in got and tuple(np.shape(got[path])) != tuple(leaf.shape)
    ]
    if wrong:
        problems.append(f"shape mismatch for Flax {name}: {_listing(wrong)}")
    if problems:
        raise ConversionError(f"{source}: " + "; ".join(problems))
    return jax.tree.map(
        lambda leaf, spec: np.asarray(leaf, dtype=spec.dtype), variables, template(name)
    )


RANDOM_SOURCE = "random-init"  # weights.json "source" of `random_variables` weights


def random_variables(name: str, seed: int) -> dict[str, Any]:
    """Seeded random variables of network `name` (numpy, the template's tree and dtypes),
    for running the extraction pipeline where no converted checkpoint is at hand (CI, a
    first try): kernels LeCun-normal over their fan-in, BatchNorm variances and scales 1,
    means and biases 0. The features they give carry no meaning."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template(name))
    filled = []
    for index, (path, spec) in enumerate(leaves):
        leaf_name = str(getattr(path[-1], "key", path[-1]))
        shape = tuple(spec.shape)
        if leaf_name == "kernel":
            rng = np.random.default_rng([seed, index])
            fan_in = int(np.prod(shape[:-1])) or 1
            value = rng.standard_normal(shape, dtype=np.float32) / np.sqrt(fan_in)
        elif leaf_name in ("var", "scale"):
            value = np.ones(shape, np.float32)
        else:
            value = np.zeros(shape, np.float32)
        filled.append(value.astype(spec.dtype))
    return jax.tree_util.tree_unflatten(treedef, filled)


def _as_numpy(value: Any, key: str, path: Path) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        return value.detach().cpu().numpy()
    raise ConversionError(f"{path}: entry {key!r} is a {type(value).__name__}, not an array")


def read_state_dict(path: str | Path, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    """key -> numpy array from a PyTorch checkpoint (.pth/.pt: needs torch) or a .npz.

    PyTorch files are loaded with ``weights_only=True`` (no arbitrary code from the
    pickle) unless `trust_pickle`. A checkpoint wrapping its weights in "state_dict" is
    unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError) as err:
            raise ConversionError(f"{path}: not a readable .npz ({err})") from err
    try:
        import torch
    except ImportError as err:
        raise ConversionError(
            f"{path}: reading PyTorch checkpoints needs torch, which is an optional extra: "
            "pip install -e '.[convert]' (or pass the state dict as an .npz of numpy arrays)"
        ) from err
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        hint = (
            ""
            if trust_pickle
            else (
                "; if the file is a checkpoint you trust that stores more than tensors "
                "(e.g. numpy arrays), retry with --trust-pickle"
            )
        )
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConversionError(
            f"{path}: cannot read as a PyTorch checkpoint ({first_line}){hint}"
        ) from err
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ConversionError(f"{path}: expected a state dict, got a {type(loaded).__name__}")
    return {str(key): _as_numpy(value, str(key), path) for key, value in loaded.items()}


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_converted(
    variables: Any,
    weights_dir: str | Path,
    name: str,
    source: str | Path,
    source_sha256: str,
    force: bool = False,
) -> Path:
    """Writes WEIGHTS_DIR/<name>/{variables/, weights.json}; returns that directory.

    An existing directory is replaced only with `force` (and only once the new one is
    complete)."""
    import orbax.checkpoint as ocp

    spec_for(name)
    weights_dir = Path(weights_dir).absolute()
    target = weights_dir / name
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to replace it")
    weights_dir.mkdir(parents=True, exist_ok=True)
    tmp = weights_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp / VARIABLES_DIR, variables)
    checkpointer.wait_until_finished()
    checkpointer.close()
    atomic_write_json(
        tmp / WEIGHTS_FILE,
        {
            "format_version": FORMAT_VERSION,
            "name": name,
            "source": Path(source).name,
            "sha256": source_sha256,
            "shapes": {path: list(np.shape(leaf)) for path, leaf in _flat(variables).items()},
        },
    )
    old = weights_dir / f".{name}.old"
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def convert_file(
    name: str, path: str | Path, trust_pickle: bool = False
) -> tuple[dict[str, Any], str]:
    """(variables, sha256 of the file) of network `name` from a reference checkpoint."""
    arrays = read_state_dict(path, trust_pickle=trust_pickle)
    return convert_state_dict(name, arrays, source=str(path)), sha256_file(path)


def load_converted(weights_dir: str | Path, name: str) -> Any:
    """The variables of network `name` from WEIGHTS_DIR/<name>/ (numpy arrays)."""
    import orbax.checkpoint as ocp

    directory = Path(weights_dir).absolute() / name
    if not (directory / VARIABLES_DIR).is_dir():
        spec = spec_for(name)
        raise FileNotFoundError(
            f"no converted {name} weights under {directory}: run `avloc convert-weights "
            f"... --out {Path(weights_dir)}` on {spec.reference_file or 'its checkpoint'}"
        )
    checkpointer = ocp.StandardCheckpointer()
    try:
        return checkpointer.restore(directory / VARIABLES_DIR, template(name))
    finally:
        checkpointer.close()
