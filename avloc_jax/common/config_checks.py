"""Checks a config against a reference config before anything runs.

The reference (configs/default.py's `get_config()`) fixes the keys and each key's type;
`choices` and `bounds` (declared next to the defaults) fix the allowed values. Every
problem ends in a `ConfigError` whose message is one line naming the key and what is
allowed, with the closest known key for a typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

Bounds = tuple[float | None, float | None]  # inclusive (low, high); None = unbounded


class ConfigError(ValueError):
    """A config key or value that is not allowed; the message is one line."""


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


def unknown_key_error(key: str, reference: Any) -> ConfigError:
    return ConfigError(f"unknown config key {key}{suggestion(key, list(flat_keys(reference)))}")


def type_name(reference_value: Any) -> str:
    if isinstance(reference_value, bool):
        return "a bool (True or False)"
    if isinstance(reference_value, int):
        return "an integer"
    if isinstance(reference_value, float):
        return "a number"
    if isinstance(reference_value, str):
        return "a string"
    if isinstance(reference_value, (tuple, list)):
        return "a tuple"
    return type(reference_value).__name__


def _has_type(value: Any, reference_value: Any) -> bool:
    """Whether value has the reference's type; bool is never an int, an int is a float,
    and a list is a tuple (JSON stores tuples as lists)."""
    if isinstance(reference_value, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(reference_value, bool)
    if isinstance(reference_value, int):
        return isinstance(value, int)
    if isinstance(reference_value, float):
        return isinstance(value, (int, float))
    if isinstance(reference_value, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(reference_value))


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


def _check_value(
    key: str,
    value: Any,
    reference_value: Any,
    choices: Mapping[str, tuple[Any, ...]],
    bounds: Mapping[str, Bounds],
    item_types: Mapping[str, type],
) -> None:
    if not _has_type(value, reference_value):
        raise ConfigError(
            f"config key {key}: got {value!r} ({type(value).__name__}); "
            f"expected {type_name(reference_value)}"
        )
    if isinstance(value, (tuple, list)):
        item_type = item_types.get(key) or (type(reference_value[0]) if reference_value else None)
        if item_type is not None and not all(_has_type(v, item_type()) for v in value):
            raise ConfigError(
                f"config key {key}: got {tuple(value)!r}; "
                f"expected a tuple of {type_name(item_type()).split(' ', 1)[1]}s"
            )
    if key in choices and value not in choices[key]:
        allowed = ", ".join(str(c) for c in choices[key])
        raise ConfigError(f"config key {key}: got {value!r}; expected one of {allowed}")
    if key in bounds:
        _check_bounds(key, value, bounds[key])


def check(
    config: Any,
    reference: Any,
    *,
    choices: Mapping[str, tuple[Any, ...]],
    bounds: Mapping[str, Bounds],
    item_types: Mapping[str, type],
) -> None:
    """Raises ConfigError at the first key of `config` that is unknown to `reference`,
    missing from `config`, of the wrong type, or outside `choices` / `bounds`."""
    _check_tree(config, reference, "", choices, bounds, item_types, full_reference=reference)


def _check_tree(
    config: Any,
    reference: Any,
    prefix: str,
    choices: Mapping[str, tuple[Any, ...]],
    bounds: Mapping[str, Bounds],
    item_types: Mapping[str, type],
    full_reference: Any,
) -> None:
    for key in config:
        if key not in reference:
            raise unknown_key_error(f"{prefix}{key}", full_reference)
    for key, reference_value in reference.items():
        path = f"{prefix}{key}"
        if key not in config:
            raise ConfigError(
                f"config key {path} is missing (a config from an older version? "
                "it needs config_version and a migration)"
            )
        value = config[key]
        if _is_mapping(reference_value):
            if not _is_mapping(value):
                raise ConfigError(f"config key {path}: got {value!r}; expected a group of keys")
            _check_tree(
                value, reference_value, path + ".", choices, bounds, item_types, full_reference
            )
        else:
            _check_value(path, value, reference_value, choices, bounds, item_types)


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
