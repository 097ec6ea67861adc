"""Hypothesis strategies the property tests share."""

from __future__ import annotations

from hypothesis import strategies as st


def mutations(text: str, punctuation: str) -> st.SearchStrategy[str]:
    """TEXT cut short, with one line replaced by any text, or with one of PUNCTUATION put anywhere."""
    lines = text.splitlines()
    return st.one_of(
        st.integers(0, len(text)).map(lambda n: text[:n]),
        st.tuples(st.integers(0, len(lines) - 1), st.text(max_size=40)).map(
            lambda p: "\n".join([*lines[: p[0]], p[1], *lines[p[0] + 1 :]])
        ),
        st.tuples(st.integers(0, len(text)), st.sampled_from(list(punctuation))).map(
            lambda p: text[: p[0]] + p[1] + text[p[0] :]
        ),
    )
