"""How far the config travels: the modules a config walks through from the train entry.

    python tools/config_walk.py [--entry avloc_jax.engine.train:train_and_evaluate]
                                [--root DIR] [--verbose]

The walk starts in the entry function with its `config` parameter and follows every
hand-over of the config:

* a call with an argument that is the config or one of its groups (`config.model`,
  `config.data.demo`: the groups of avloc_jax/schema.py; a leaf such as
  `config.train.batch_size` is a plain value, not the config) goes into the called
  function, with the parameter that received it;
* a section picked by a name that is not written out (`config[section]`), or a mapping
  holding sections (`{s: config[s] for s in names}`), is a group too (which one the walk
  cannot tell: it follows it as "some section", `SECTION`);
* an object built with it that keeps it (`self.config = config`) takes it into every
  method of its class (they run later with it); a class looked up in a registry
  (`EVALUATORS[name](...)`) stands for every class of the registry's module registered
  by a decorator; a builder looked up in a registry dict (`FUSIONS[name](...)`, or
  through a helper that returns the entry, `_builder(FUSIONS, ...)(...)`) stands for
  every value of the dict (functions, lambdas, and the functions that factories in it
  return);
* a callback that holds it (a nested function or lambda reading it, or the result of a
  call of this module that returns one) is a hand-over too: the callee will call back.

Modules are read with `ast`; names are resolved through each module's imports (lazy ones
included), and the import graph comes from grimp (import-linter's own library).

Printed, and returned by `walk`:

  modules  distinct modules the config reaches (the entry's included)
  moves    hand-overs to another module
  stays    hand-overs to a function of the same module
  climbs   hand-overs back up to a module already left: a callback holding the config
           passed down to a module that imports the callback's module (it calls back up
           into it), or a call into a module upstream of the caller
  unresolved  hand-overs to something the walk cannot name; listed with --verbose

`--root` analyses another checkout (an older commit's, from `git archive`);
tests/test_config_walk.py checks the counting on small packages and the figure that
docs/architecture.md gives for this one.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import dataclasses
import sys
from pathlib import Path
from typing import Any

ENTRY = "avloc_jax.engine.train:train_and_evaluate"
# Where a hand-over may lead: the library and the configs (which the library imported
# before the schema moved into it).
PACKAGES = ("avloc_jax", "configs")
CONFIG_PARAMETER = "config"
# "Some section": a group picked by a computed name; "sections": a mapping of such groups.
SECTION, SECTIONS = "<section>", "<sections>"
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclasses.dataclass
class Walk:
    """The result of a walk (see the module docstring)."""

    modules: list[str] = dataclasses.field(default_factory=list)  # in the order reached
    moves: int = 0
    stays: int = 0
    climbs: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (from, to)
    unresolved: list[str] = dataclasses.field(default_factory=list)
    edges: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # functions

    def summary(self) -> str:
        return (
            f"{len(self.modules)} modules, {self.moves} moves, {self.stays} stays, "
            f"{len(self.climbs)} climbs, {len(self.unresolved)} unresolved"
        )


# ----------------------------------------------------------------------------- source


class Package:
    """The modules of one package: syntax trees, imported names, import graph."""

    def __init__(self, names: tuple[str, ...], root: Path):
        import grimp

        self.root, self.names_ = root, names
        sys.path.insert(0, str(root))
        try:
            self.graph = grimp.build_graph(*names, cache_dir=None)
        finally:
            sys.path.remove(str(root))
        self._trees: dict[str, ast.Module] = {}
        self._names: dict[str, dict[str, str]] = {}

    def tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            base = self.root.joinpath(*module.split("."))
            path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
            self._trees[module] = ast.parse(path.read_text())
        return self._trees[module]

    def inside(self, dotted: str) -> bool:
        return any(dotted == n or dotted.startswith(n + ".") for n in self.names_)

    def upstream(self, module: str, of: str) -> bool:
        """Whether `module` imports `of`, directly or not (it is above `of`)."""
        return module != of and self.graph.chain_exists(importer=module, imported=of)

    def names(self, module: str) -> dict[str, str]:
        """Local name -> dotted target of the module's imports (lazy ones included) and of
        its top-level definitions."""
        if module in self._names:
            return self._names[module]
        found: dict[str, str] = {}
        is_package = (self.root.joinpath(*module.split(".")) / "__init__.py").exists()
        package = module if is_package else module.rpartition(".")[0]
        for node in ast.walk(self.tree(module)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    head = alias.name.split(".")[0]
                    found[alias.asname or head] = alias.name if alias.asname else head
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parent = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{parent}.{base}" if base else parent
                for alias in node.names:
                    found[alias.asname or alias.name] = f"{base}.{alias.name}"
        for node in self.tree(module).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[node.name] = f"{module}.{node.name}"
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        found[target.id] = f"{module}.{target.id}"
        self._names[module] = found
        return found

    def definition(self, dotted: str) -> tuple[str, ast.AST] | None:
        """(module, node) of "pkg.mod.name": a function, a class or an assignment,
        following re-exports (`from x import name`); None outside the package."""
        for _ in range(10):  # re-export chains are short
            module, _, attr = dotted.rpartition(".")
            if module not in self.graph.modules:
                return None
            for node in self.tree(module).body:
                named = getattr(node, "name", None) == attr
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    if named:
                        return module, node
                elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
                        return module, node
            target = self.names(module).get(attr)
            if target is None or target == dotted or target in self.graph.modules:
                return None
            dotted = target
        return None


# ----------------------------------------------------------------------------- walk


def _chain(node: ast.AST) -> tuple[str, list[str]] | None:
    """`a.b.c` -> ("a", ["b", "c"]); None for anything else."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.insert(0, node.attr)
        node = node.value
    return (node.id, attrs) if isinstance(node, ast.Name) else None


def _reads(node: ast.AST) -> set[str]:
    """Names read in `node`, and their `self.attr` chains."""
    found = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            found.add(child.id)
        chain = _chain(child)
        if chain is not None and chain[0] == "self" and chain[1]:
            found.add(f"self.{chain[1][0]}")
    return found


def _body(function: ast.AST) -> list[ast.AST]:
    """Every node of a function's body, nested functions included (closures run with the
    config they read)."""
    body = function.body if isinstance(function.body, list) else [function.body]  # type: ignore[attr-defined]
    return [node for statement in body for node in ast.walk(statement)]


def _bind(function: Any, bound: list[tuple[int | str, str]], method: bool) -> dict[str, str]:
    """Parameter name -> group, for the arguments that carried the config."""
    params = [a.arg for a in function.args.posonlyargs + function.args.args]
    if method and params:
        params = params[1:]  # self / cls
    names = set(params) | {a.arg for a in function.args.kwonlyargs}
    carriers = {}
    for where, group in bound:
        if isinstance(where, int) and where < len(params):
            carriers[params[where]] = group
        elif isinstance(where, str) and where in names:
            carriers[where] = group
    return carriers


class _Walker:
    def __init__(self, package: Package, groups: set[str]):
        self.package, self.groups = package, groups
        # Whether groups count (not only the whole config): then sections do too.
        self.sectioned = bool(groups - {""})
        self.result = Walk()
        self.seen: set[tuple[str, int, str]] = set()

    # --- what carries the config

    def group_of(self, expr: ast.AST, carriers: dict[str, str]) -> str | None:
        """The group `expr` names (a carrier, or a carrier's attribute chain that is a
        group), else None. Carriers may be `self.attr`."""
        if isinstance(expr, ast.IfExp):  # either branch may be handed on
            return self.group_of(expr.body, carriers) or self.group_of(expr.orelse, carriers)
        if isinstance(expr, ast.Subscript):  # config[name]: a section, unless a leaf is named
            group = self.group_of(expr.value, carriers)
            if group is None or not self.sectioned:
                return None
            if group == SECTIONS:
                return SECTION
            key = expr.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                named = ".".join(p for p in [group, key.value] if p)
                return named if named in self.groups else None
            return SECTION
        if isinstance(expr, (ast.Dict, ast.DictComp)) and self.sectioned:
            values = expr.values if isinstance(expr, ast.Dict) else [expr.value]
            if any(v is not None and self.group_of(v, carriers) for v in values):
                return SECTIONS
            return None
        chain = _chain(expr)
        if chain is None:
            return None
        head, attrs = chain
        if head == "self" and attrs and f"self.{attrs[0]}" in carriers:
            head, attrs = f"self.{attrs[0]}", attrs[1:]
        if head not in carriers:
            return None
        if carriers[head] in (SECTION, SECTIONS):  # an attribute of some section: a leaf
            return carriers[head] if not attrs else None
        group = ".".join(p for p in [carriers[head], *attrs] if p)
        return group if group in self.groups else None

    def is_callback(self, module: str, expr: ast.AST, scope: dict[str, Any]) -> bool:
        """A lambda reading the config, a name bound to a callback, or a call of one of
        this module's factories of callbacks with the config."""
        if isinstance(expr, ast.Lambda):
            return bool(_reads(expr.body) & set(scope["carriers"]))
        if isinstance(expr, ast.Name):
            return expr.id in scope["closures"]
        if isinstance(expr, ast.Call) and self.callee(module, expr.func) in self.factories(module):
            return any(self.carried(module, a, scope)[0] for a in self.arguments(expr))
        return False

    def carried(self, module: str, expr: ast.AST, scope: dict[str, Any]) -> tuple[bool, str | None]:
        """(whether `expr` hands on the config, the group it is or None for a callback)."""
        group = self.group_of(expr, scope["carriers"])
        if group is not None:
            return True, group
        return self.is_callback(module, expr, scope), None

    @staticmethod
    def arguments(call: ast.Call) -> list[ast.AST]:
        return list(call.args) + [k.value for k in call.keywords]

    def factories(self, module: str) -> set[str]:
        """This module's functions that return a nested function reading their
        parameters (factories of callbacks)."""
        found = set()
        for node in self.package.tree(module).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            params = {a.arg for a in node.args.args + node.args.kwonlyargs}
            inner = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and params & _reads(n)
            }
            if any(
                isinstance(r, ast.Return) and isinstance(r.value, ast.Name) and r.value.id in inner
                for r in node.body
            ):
                found.add(f"{module}.{node.name}")
        return found

    def callee(self, module: str, func: ast.AST) -> str | None:
        chain = _chain(func)
        if chain is None or chain[0] not in self.package.names(module):
            return None
        dotted = ".".join([self.package.names(module)[chain[0]], *chain[1]])
        return dotted if self.package.inside(dotted) else None

    # --- the walk

    def visit(self, module: str, function: Any, carriers: dict[str, str]) -> None:
        key = (module, id(function), repr(sorted(carriers.items())))
        if key in self.seen:
            return
        self.seen.add(key)
        if module not in self.result.modules:
            self.result.modules.append(module)
        scope: dict[str, Any] = {"carriers": dict(carriers), "closures": set()}
        nodes = _body(function)
        changed = True
        while changed:  # local names bound to the config, a group, or a callback
            changed = False
            for node in nodes:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name):
                        group = self.group_of(node.value, scope["carriers"])
                        if group is not None and scope["carriers"].get(target.id) != group:
                            scope["carriers"][target.id] = group
                            changed = True
                        elif (
                            group is None
                            and target.id not in scope["closures"]
                            and self.is_callback(module, node.value, scope)
                        ):
                            scope["closures"].add(target.id)
                            changed = True
                elif (
                    isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and node is not function
                    and node.name not in scope["closures"]
                    and _reads(node) & set(scope["carriers"])
                ):
                    scope["closures"].add(node.name)
                    changed = True
        nested = {
            n.name: n
            for n in nodes
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n is not function
        }
        for node in nodes:
            if isinstance(node, ast.Call):
                self.call(module, function, node, scope, nested)

    def call(
        self,
        module: str,
        function: Any,
        call: ast.Call,
        scope: dict[str, Any],
        nested: dict[str, Any],
    ) -> None:
        bound: list[tuple[int | str, str]] = []
        callbacks = False
        positional = list(enumerate(call.args))
        keywords = [(k.arg, k.value) for k in call.keywords if k.arg is not None]
        for where, arg in positional + keywords:
            hands_on, group = self.carried(module, arg, scope)
            if group is not None:
                bound.append((where, group))
            elif hands_on:
                callbacks = True
        if not bound and not callbacks:
            return
        where_from = f"{module}:{getattr(function, 'name', '<lambda>')}"
        chain = _chain(call.func)
        if chain is not None and not chain[1] and chain[0] in nested:
            self.hand_over(where_from, module, module, nested[chain[0]], bound, callbacks)
            return
        targets = self.targets(module, call.func)
        if targets is None:
            if chain is None or not self.outside(chain[0], module):
                self.result.unresolved.append(f"{where_from}: {ast.unparse(call.func)}")
            return
        if not targets:  # leaves the package
            return
        target_module = targets[0][0]
        first = True
        for owner, node in targets:
            self.hand_over(where_from, module, owner, node, bound, callbacks, count=first)
            first = False
        del target_module

    def targets(self, module: str, func: ast.AST) -> list[tuple[str, ast.AST]] | None:
        """The functions or classes a call reaches ([] outside the package, None when
        they cannot be named)."""
        if isinstance(func, ast.Subscript):  # a registry lookup: REGISTRY[name](...)
            return self.registry(module, func.value)
        if isinstance(func, ast.Call):  # helper(REGISTRY, ...)(...): a registry's entry
            for arg in self.arguments(func):
                found = self.registry(module, arg)
                if found:
                    return found
            return None
        name = self.callee(module, func)
        if name is None:
            chain = _chain(func)
            return [] if chain is not None and self.outside(chain[0], module) else None
        found = self.package.definition(name)
        if found is None or isinstance(found[1], (ast.Assign, ast.AnnAssign)):
            return None
        return [found]

    def registry(self, module: str, expr: ast.AST) -> list[tuple[str, Any]] | None:
        """What a registry named by `expr` may give: a dict literal's values (functions,
        lambdas, the nested functions that factories in it return), or else the classes
        of its module registered by a decorator; None if `expr` names no registry."""
        name = self.callee(module, expr)
        found = self.package.definition(name) if name else None
        if found is None or not isinstance(found[1], (ast.Assign, ast.AnnAssign)):
            return None
        owner, assign = found
        if isinstance(assign.value, ast.Dict) and assign.value.values:
            entries: list[tuple[str, Any]] = []
            for value in assign.value.values:
                if isinstance(value, ast.Lambda):
                    entries.append((owner, value))
                    continue
                is_call = isinstance(value, ast.Call)
                target = self.callee(owner, value.func if is_call else value)  # type: ignore[attr-defined]
                definition = self.package.definition(target) if target else None
                if definition is None:
                    return None
                if is_call:  # a factory: the nested function it returns
                    definition = _returned_function(*definition)
                    if definition is None:
                        return None
                entries.append(definition)
            return entries
        classes = [
            (owner, n)
            for n in self.package.tree(owner).body
            if isinstance(n, ast.ClassDef)
            and any(self.registers(owner, d) for d in n.decorator_list)
        ]
        return classes or None

    def registers(self, module: str, decorator: ast.AST) -> bool:
        """Whether `decorator` calls a function of `module` itself (`@register(name)`), not
        one from elsewhere (`@dataclasses.dataclass(frozen=True)`)."""
        if not isinstance(decorator, ast.Call) or not isinstance(decorator.func, ast.Name):
            return False
        name = decorator.func.id
        return self.package.names(module).get(name) == f"{module}.{name}"

    def outside(self, head: str, module: str) -> bool:
        """Whether a call through local name `head` leaves the package: a builtin, or a
        name imported from elsewhere (a parameter or local variable is not: where it
        leads is unknown)."""
        target = self.package.names(module).get(head)
        if target is not None:
            return not self.package.inside(target)
        return hasattr(builtins, head)

    def hand_over(
        self,
        where_from: str,
        module: str,
        target_module: str,
        node: Any,
        bound: list[tuple[int | str, str]],
        callbacks: bool,
        count: bool = True,
    ) -> None:
        if count:
            if target_module == module:
                self.result.stays += 1
            else:
                self.result.moves += 1
                if self.package.upstream(target_module, module):
                    self.result.climbs.append((module, target_module))  # a call up
                elif callbacks and self.package.upstream(module, target_module):
                    # The callback goes down; it will be called back up into this module.
                    self.result.climbs.append((target_module, module))
        name = getattr(node, "name", "<lambda>")
        self.result.edges.append((where_from, f"{target_module}:{name}"))
        if not bound:
            return
        if isinstance(node, ast.ClassDef):
            self.build(target_module, node, bound)
        else:
            self.visit(target_module, node, _bind(node, bound, method=False))

    def build(self, module: str, cls: ast.ClassDef, bound: list[tuple[int | str, str]]) -> None:
        """An object built with the config: its __init__, then every method with the
        attributes that keep the config."""
        lineage = self.lineage(module, cls)
        init = next(((m, n) for m, c in lineage for n in c.body if _is_method(n, "__init__")), None)
        if init is None:
            return
        carriers = _bind(init[1], bound, method=True)
        self.visit(init[0], init[1], carriers)
        kept = {}
        for node in _body(init[1]):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                chain = _chain(node.targets[0])
                group = self.group_of(node.value, carriers)
                if chain and chain[0] == "self" and len(chain[1]) == 1 and group is not None:
                    kept[f"self.{chain[1][0]}"] = group
        if not kept:
            return
        for owner, klass in lineage:
            for node in klass.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    node.name != "__init__"
                ):
                    self.visit(owner, node, kept)

    def lineage(self, module: str, cls: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
        """The class and its bases in the package, nearest first."""
        found = [(module, cls)]
        for base in cls.bases:
            name = self.callee(module, base)
            definition = self.package.definition(name) if name else None
            if definition is not None and isinstance(definition[1], ast.ClassDef):
                found += self.lineage(definition[0], definition[1])
        return found


def _returned_function(module: str, node: ast.AST) -> tuple[str, ast.AST] | None:
    """(module, the nested function that factory `node` returns), or None."""
    if not isinstance(node, ast.FunctionDef):
        return None
    nested = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
    for statement in node.body:
        value = statement.value if isinstance(statement, ast.Return) else None
        if isinstance(value, ast.Name) and value.id in nested:
            return module, nested[value.id]
    return None


def _is_method(node: ast.AST, name: str) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name


def _groups() -> set[str]:
    """The config groups ("" is the whole config), from the schema."""
    from avloc_jax.common.config_checks import groups
    from avloc_jax.schema import SCHEMA

    return {""} | groups(SCHEMA)


def walk(
    entry: str = ENTRY,
    root: Path | None = None,
    parameter: str = CONFIG_PARAMETER,
    groups: set[str] | None = None,
) -> Walk:
    """Walks the config from `entry` ("package.module:function") in the checkout `root`
    (default: this file's); `groups`: the config's groups (default: the schema's)."""
    root = root or Path(__file__).resolve().parents[1]
    module, _, function_name = entry.partition(":")
    names = tuple(dict.fromkeys([module.split(".")[0], *PACKAGES]))
    package = Package(tuple(n for n in names if (root / n).is_dir()), root)
    found = package.definition(f"{module}.{function_name}")
    if found is None or not isinstance(found[1], (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise ValueError(f"{entry}: no such function under {root}")
    walker = _Walker(package, _groups() if groups is None else groups)
    walker.visit(found[0], found[1], {parameter: ""})
    return walker.result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entry", default=ENTRY, help="package.module:function")
    parser.add_argument("--root", type=Path, default=None, help="the checkout to analyse")
    parser.add_argument("--verbose", action="store_true", help="list the hand-overs too")
    args = parser.parse_args(argv)
    result = walk(args.entry, args.root)
    print(f"{args.entry}: {result.summary()}")
    if args.verbose:
        print("modules: " + ", ".join(result.modules))
        for caller, callee in result.edges:
            print(f"  {caller} -> {callee}")
        for low, high in result.climbs:
            print(f"  climb: {low} -> {high}")
        for call in result.unresolved:
            print(f"  unresolved: {call}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
