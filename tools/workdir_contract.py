"""An import-linter contract type: only one module spells the workdir's paths.

pyproject.toml registers it (`contract_types`) and uses it once:

    [[tool.importlinter.contracts]]
    type = "workdir_paths"
    owner = "avloc_jax.common.workdir"

The layout's names are the owner's module-level string constants named `*_FILE` or
`*_DIR` (config.json, checkpoints, results, ...), read from its source, so this file
restates none of them. Every other module of the analysed packages breaks the contract
where a string literal equal to one of those names

* is a file name (it has a dot: "config.json", "metrics.jsonl"), anywhere, or
* is a directory name used as a path: an operand of `/`, or an argument of `Path(...)`,
  `os.path.join(...)` or `.joinpath(...)` ("results" is also an ActivityNet JSON key,
  which is not a path).

They use the owner's `Workdir` instead. `lint-imports` runs it with the other contracts;
tests/test_workdir.py checks that it breaks on such a literal.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from importlinter import Contract, ContractCheck, fields, output

_PATH_CALLS = {"Path", "PurePath", "join", "joinpath"}


def layout_names(source: str) -> set[str]:
    """The module-level `*_FILE` / `*_DIR` string constants of a module's source."""
    names = set()
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.endswith(("_FILE", "_DIR")):
                    names.add(node.value.value)
    return names


def spellings(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every literal in `source` that spells one of `names` as a path."""
    tree = ast.parse(source)
    as_path: set[int] = set()  # ids of literals used as path pieces
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            as_path.update(id(side) for side in (node.left, node.right))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _PATH_CALLS:
                as_path.update(id(arg) for arg in node.args)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and node.value in names
            and ("." in node.value or id(node) in as_path)
        ):
            found.append((node.lineno, node.value))
    return sorted(found)


class WorkdirPathsContract(Contract):
    """Only `owner` spells the workdir layout's file and directory names as paths."""

    owner = fields.StringField()

    def check(self, graph, verbose: bool) -> ContractCheck:
        owner_source = _source(self.owner)
        if owner_source is None:
            raise ValueError(f"workdir_paths: no source for owner module {self.owner}")
        names = layout_names(owner_source)
        if not names:
            raise ValueError(f"workdir_paths: {self.owner} has no *_FILE / *_DIR constants")
        violations = []
        for module in sorted(graph.modules):
            if module == self.owner:
                continue
            source = _source(module)
            if source is None:
                continue
            for line, name in spellings(source, names):
                violations.append({"module": module, "line": line, "name": name})
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(
                f"{violation['module']}:{violation['line']} spells {violation['name']!r}; "
                f"use {self.owner}.Workdir",
                bold=False,
            )
        output.new_line()


def _source(module: str) -> str | None:
    """The source of `module`, found from its top-level package's folder (without
    importing the module or its parents)."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return path.read_text() if path.is_file() else None
