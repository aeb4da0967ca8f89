"""The fast path of `contracts.catalog.inspect_values` (printable ASCII strings and keys, ints, flags and
nulls taken as they are) gives exactly what the full walk gives: the same clean value and the same
violations, at every depth up to and beyond MAX_DEPTH."""
from __future__ import annotations

from unittest.mock import patch

from hypothesis import given, settings, strategies as st

from contracts import catalog
from contracts.catalog import MAX_DEPTH, inspect_values


def reference(value):
    """The full walk: every string and key through the rules' regexes (the fast path's tests turned off)."""
    with patch.object(catalog, "_plain_text", lambda v: False), patch.object(catalog, "_plain_key", lambda k: False):
        return inspect_values(value)


# strings near every rule's edge: printable ASCII, spaces only, empty, tabs and newlines, DEL and C0/C1
# controls, bidi overrides, zero-width only, lone surrogates, text to normalise (e + combining acute)
EDGES = ["", " ", "   ", "a", "abc", "\t", "a\tb", "\n", "\r\n", "\x7f", "a\x00", "\x1b[0m", "\x85",
         "\u202e", "x\u2066", "\u200b", "\u200b \ufeff", "\ud800", "e\u0301", "张三", "$x", "a.b", "$", ".",
         "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"]
text = st.one_of(st.sampled_from(EDGES), st.text(max_size=6),
                 st.text(alphabet=st.characters(max_codepoint=0x7f), max_size=6))
leaf = st.one_of(text, st.integers(), st.booleans(), st.none(),
                 st.floats(allow_nan=True, allow_infinity=True))


def nested(depth: int):
    if depth <= 0:
        return leaf
    inner = nested(depth - 1)
    return st.one_of(leaf, st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3))


@settings(max_examples=400, deadline=None)
@given(nested(4))
def test_the_fast_path_gives_what_the_full_walk_gives(value):
    assert inspect_values({"payload": value}) == reference({"payload": value})


def chain(depth: int, leaf_value):
    value = leaf_value
    for _ in range(depth):
        value = {"k": value}
    return value


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=MAX_DEPTH - 2, max_value=MAX_DEPTH + 2), leaf,
       st.sampled_from(["k", "$k", "a.b", "", "\x00", "\u202e"]))
def test_the_depth_limit_holds_on_the_fast_path(depth, leaf_value, last_key):
    value = chain(depth, {last_key: leaf_value})
    assert inspect_values(value) == reference(value)


def test_a_leaf_past_the_depth_limit_is_still_refused():
    assert inspect_values(chain(MAX_DEPTH, "plain"))[1] == []  # the leaf at MAX_DEPTH itself
    clean, found = inspect_values(chain(MAX_DEPTH + 1, "plain"))
    assert [v.rule for v in found] == ["max_depth"]


def test_printable_ascii_is_what_the_fast_path_takes():
    assert catalog._plain_text("abc 123 ~") and not catalog._plain_text("a\tb") and not catalog._plain_text("张")
    assert catalog._plain_key("case_id") and not catalog._plain_key("$set") and not catalog._plain_key("a.b")
    assert not catalog._plain_key("")
