"""The commands' messages on stderr (``<program>: note: ...`` and ``<program>: error:
...``), and what keeps their outputs whole: output paths checked before any work, files
and folders written under a temporary name and renamed into place, and the folders made
for an output removed again when it fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from avloc_jax.common import io
from avloc_jax.common.wording import plural, some  # noqa: F401  (messages.plural/some, as before)


def note(program: str, message: str) -> None:
    """`message` (already starting with e.g. 'note:') on stderr, prefixed by `program`."""
    print(f"{program}: {message}", file=sys.stderr)


def fail(program: str, message: str, code: int) -> int:
    """Prints `program: error: message` on stderr; returns the exit status `code`."""
    print(f"{program}: error: {message}", file=sys.stderr)
    return code


def load_error(source: str, err: Exception) -> str:
    """The message for a workdir or bundle that exists but cannot be loaded (a malformed
    config.json, ...): ValueErrors name the file already, other errors get their type."""
    if isinstance(err, ValueError):
        return f"cannot load {source}: {err}"
    return f"cannot load {source}: malformed ({type(err).__name__}: {err})"


# Errors that loading a damaged workdir or bundle raises (besides FileNotFoundError).
LOAD_ERRORS = (ValueError, KeyError, TypeError, AttributeError)


def output_problem(path: str | os.PathLike, *, folder: bool = False) -> str | None:
    """Why `path` cannot be written as an output file (or, with `folder`, an output folder
    to add files to), or None: it is a folder where a file is wanted or the reverse, or
    its nearest existing parent is not a writable folder."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        return f"{path} is {'not ' if folder else ''}a folder; expected " + (
            "a folder to write into" if folder else "a file name"
        )
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is not a folder, so {path} cannot be written"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"{parent} is not writable, so {path} cannot be written"
            break
    return None


def missing_folders(path: Path) -> list[Path]:
    """The parents of `path` that do not exist yet, deepest first."""
    return [parent for parent in path.absolute().parents if not parent.exists()]


def remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; one that holds something stays
        with contextlib.suppress(OSError):
            folder.rmdir()


def write_file(path: str | os.PathLike, text: str) -> Path:
    """`text` into `path` via a temporary sibling renamed into place, creating its folder;
    if that fails, neither the temporary file nor the folders made for it are left."""
    path = Path(path)
    new = missing_folders(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return io.atomic_write_text(path, text)
    except BaseException:
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
        remove_empty(new)
        raise


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `final` to write files into. When the block ends well
    they are moved into `final` (created if needed, other files there are kept); when it
    fails the temporary folder and the folders made for it are removed."""
    final = Path(final)
    new = missing_folders(final / "_")
    stage: Path | None = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        yield stage
        final.mkdir(exist_ok=True)
        for item in sorted(stage.iterdir()):
            os.replace(item, final / item.name)
    except BaseException:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        remove_empty(new)
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
