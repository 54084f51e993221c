"""`common.wording.plural`: the one plural rule of every message."""

import pytest

from avloc_jax.common.wording import plural


@pytest.mark.parametrize(
    "count, word, many, expected",
    [
        (1, "class", None, "1 class"),
        (2, "class", None, "2 classes"),
        (0, "video", None, "0 videos"),
        (1, "video", None, "1 video"),
        (3, "box", None, "3 boxes"),
        (2, "match", None, "2 matches"),
        (2, "entry", "entries", "2 entries"),
        (1, "entry", "entries", "1 entry"),
    ],
)
def test_plural(count, word, many, expected):
    assert plural(count, word, many) == expected


def test_some_lists_the_first_few_and_says_when_there_are_more():
    from avloc_jax.common.wording import some

    assert some(["a", "b"]) == "a, b"
    assert some(["a", "b", "c", "d", "e"]) == "a, b, c, d, e"
    assert some(["a", "b", "c", "d", "e", "f"]) == "a, b, c, d, e, ..."
    assert some(["a", "b", "c", "d"], 3) == "a, b, c, ..."
    assert some([]) == ""
