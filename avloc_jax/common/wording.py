"""Words in messages: one place for the rules every layer's messages use (plurals, lists)."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 class', '2 classes', '0 videos': `count` and `word`, plural unless count is 1."""
    if count == 1:
        return f"{count} {word}"
    if many is None:
        many = word + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")
    return f"{count} {many}"


def some(items: list[str], limit: int = 5) -> str:
    """The first `limit` of `items`, comma-separated, with ', ...' when there are more."""
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
