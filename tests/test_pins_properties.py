"""Property tests for the pins' parsers: versions.yaml and the engine-argument extraction never crash."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tritonfleet.errors import InputError
from tritonfleet.pins import engine_args, versions

from helpers import ROOT
from strategies import mutations

PINNED = (ROOT / "images" / "versions.yaml").read_text()


@settings(max_examples=250, deadline=None)
@given(text=st.one_of(mutations(PINNED, ":-[]{}&*!|>'\"#%@`\t\n "), st.text(max_size=200)))
def test_any_versions_file_loads_or_fails_as_an_input_error(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "versions.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(InputError):
            pinned = versions.load(path)
            assert pinned.lookup("triton.image_ref")


@settings(max_examples=250, deadline=None)
@given(key=st.text(max_size=30))
def test_any_lookup_key_answers_or_fails_as_an_input_error(key):
    pinned = versions.load()
    with contextlib.suppress(InputError):
        assert isinstance(pinned.lookup(key), str)


@settings(max_examples=250, deadline=None)
@given(
    source=st.one_of(
        st.text(max_size=300),
        st.builds(
            lambda body: f"class EngineArgs:\n{body}\nclass AsyncEngineArgs(EngineArgs):\n    pass\n",
            st.text(max_size=120),
        ),
    )
)
def test_any_engine_arguments_source_extracts_or_fails_as_an_input_error(source):
    with contextlib.suppress(InputError):
        assert isinstance(engine_args.extract_from_source(source), dict)
    with contextlib.suppress(InputError):
        assert isinstance(engine_args.extract_aliases(source, {"ModelDType"}, "config.py"), dict)
