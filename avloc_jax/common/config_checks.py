"""Checks a config against a schema before anything runs.

A schema (avloc_jax/schema.py's `SCHEMA`) maps every dotted config key to a `Key`: its
type and, where they are restricted, its allowed values (choices, bounds). Every problem
ends in a `ConfigError` whose message is one line naming the key and what is allowed,
with the closest known key for a typo.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

Bounds = tuple[float | None, float | None]  # inclusive (low, high); None = unbounded


class ConfigError(ValueError):
    """A config key or value that is not allowed; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Key:
    """What one config key allows.

    kind: bool, int, float (an int is a number too), str or tuple (JSON's lists count).
    choices: the allowed values (for a tuple: of each item); any collection, read when a
      config is checked (a registry that grows later is seen).
    bounds: inclusive (low, high) of the value (for a tuple: of each item).
    item_type: the type of a tuple's items.
    """

    kind: type
    choices: Collection[Any] | None = None
    bounds: Bounds | None = None
    item_type: type | None = None


def _is_mapping(value: Any) -> bool:
    # ConfigDict is not a Mapping subclass, but has keys() and __getitem__.
    return isinstance(value, Mapping) or (hasattr(value, "keys") and hasattr(value, "items"))


def flat_keys(config: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted leaf key of a (nested) config, in order."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if _is_mapping(value):
            yield from flat_keys(value, path + ".")
        else:
            yield path


def suggestion(key: str, known: list[str]) -> str:
    """'; did you mean X?' for the closest known key, or '' when none is close."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        leaf_matches = [k for k in known if k.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]]
        close = leaf_matches[:1]
    return f"; did you mean {close[0]}?" if close else ""


def unknown_key_error(key: str, known: Any) -> ConfigError:
    """'unknown config key K; did you mean ...?' with `known` a config or a list of keys."""
    keys = list(flat_keys(known)) if _is_mapping(known) else list(known)
    return ConfigError(f"unknown config key {key}{suggestion(key, keys)}")


_TYPE_NAMES = {
    bool: "a bool (True or False)",
    int: "an integer",
    float: "a number",
    str: "a string",
    tuple: "a tuple",
}
_PLURALS = {bool: "bools", int: "integers", float: "numbers", str: "strings"}


def _kind(value: Any) -> type:
    """The schema type of a value (a list is a tuple)."""
    return tuple if isinstance(value, list) else type(value)


def type_name(value: Any) -> str:
    """'an integer', 'a string', ... for the type of `value`."""
    kind = _kind(value)
    return _TYPE_NAMES.get(kind, kind.__name__)


def _has_type(value: Any, expected: type) -> bool:
    """Whether value is of the schema type; bool is never an int, an int is a float,
    and a list is a tuple (JSON stores tuples as lists)."""
    if expected is bool or isinstance(value, bool):
        return expected is bool and isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float))
    if expected is tuple:
        return isinstance(value, (tuple, list))
    return isinstance(value, expected)


def _check_bounds(key: str, value: Any, bounds: Bounds) -> None:
    low, high = bounds
    items = value if isinstance(value, (tuple, list)) else (value,)
    for item in items:
        numeric = isinstance(item, (int, float)) and not isinstance(item, bool)
        if not numeric or (low is not None and item < low) or (high is not None and item > high):
            allowed = " and ".join(
                part
                for part in (
                    f">= {low}" if low is not None else "",
                    f"<= {high}" if high is not None else "",
                )
                if part
            )
            what = "every item " if isinstance(value, (tuple, list)) else ""
            raise ConfigError(f"config key {key}: got {value!r}; expected {what}{allowed}")


def check_value(key: str, value: Any, spec: Key) -> None:
    """Raises ConfigError unless `value` is of `spec`'s type, choices and bounds."""
    if not _has_type(value, spec.kind):
        raise ConfigError(
            f"config key {key}: got {value!r} ({type(value).__name__}); "
            f"expected {_TYPE_NAMES.get(spec.kind, spec.kind.__name__)}"
        )
    is_tuple = isinstance(value, (tuple, list))
    if (
        is_tuple
        and spec.item_type is not None
        and not all(_has_type(v, spec.item_type) for v in value)
    ):
        raise ConfigError(
            f"config key {key}: got {tuple(value)!r}; "
            f"expected a tuple of {_PLURALS.get(spec.item_type, spec.item_type.__name__)}"
        )
    if spec.choices is not None:
        allowed = ", ".join(str(c) for c in spec.choices)
        if is_tuple:
            bad = [v for v in value if v not in spec.choices]
            if bad:
                raise ConfigError(
                    f"config key {key}: got {tuple(value)!r}; {', '.join(map(repr, bad))} "
                    f"unknown; expected items among {allowed}"
                )
        elif value not in spec.choices:
            raise ConfigError(f"config key {key}: got {value!r}; expected one of {allowed}")
    if spec.bounds is not None:
        _check_bounds(key, value, spec.bounds)


def groups(schema: Mapping[str, Key]) -> set[str]:
    """The dotted group keys of a schema ("data", "data.demo", ...)."""
    return {key.rsplit(".", i)[0] for key in schema for i in range(1, key.count(".") + 1)}


def check(config: Any, schema: Mapping[str, Key]) -> None:
    """Raises ConfigError at the first key of `config` that is unknown to `schema` (a
    group where a value belongs or the reverse included), then at the first key of
    `schema` that `config` lacks or whose value it does not allow."""
    group_keys = groups(schema)

    def unknown(node: Any, prefix: str) -> None:
        for name, value in node.items():
            path = f"{prefix}{name}"
            if path in schema:
                continue
            if path in group_keys and _is_mapping(value):
                unknown(value, path + ".")
            elif path in group_keys:
                raise ConfigError(f"config key {path}: got {value!r}; expected a group of keys")
            else:
                raise unknown_key_error(path, schema)

    unknown(config, "")
    for key, spec in schema.items():
        node: Any = config
        for part in key.split("."):
            if not _is_mapping(node) or part not in node:
                raise ConfigError(
                    f"config key {key} is missing (a config from an older version? "
                    "it needs config_version and a migration)"
                )
            node = node[part]
        check_value(key, node, spec)


class _Absent:
    """The value of a key that one of two compared configs does not have."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = _Absent()


def _flat_items(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every dotted leaf key of a nested config -> its value (groups are not leaves)."""
    items: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if _is_mapping(value):
            items.update(_flat_items(value, path + "."))
        else:
            items[path] = value
    return items


def _same(a: Any, b: Any) -> bool:
    """Equal values, where a bool never equals a number and a tuple equals its list."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def differences(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) of every leaf that differs between two nested
    configs (ConfigDicts or plain dicts), in the order of `old`'s keys then `new`'s; a
    key on one side only has the value "<absent>" on the other."""
    flat_old, flat_new = _flat_items(old), _flat_items(new)
    found = []
    for key in list(flat_old) + [k for k in flat_new if k not in flat_old]:
        a, b = flat_old.get(key, ABSENT), flat_new.get(key, ABSENT)
        if not _same(a, b):
            found.append((key, a, b))
    return found
