"""Property tests: no model.json, config.pbtxt or repository layout may end in a traceback.

Every generated input either loads and validates or raises InputError, the one-line error.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritonfleet.errors import InputError
from tritonfleet.pins import engine_args, versions
from tritonfleet.repository import model, schema, validate

from helpers import MODEL_REPOSITORY
from strategies import mutations

EIGHT_B = MODEL_REPOSITORY / "llama-3.1-8b-instruct"
SPEC = engine_args.load("vllm", versions.load())
CONFIG = (EIGHT_B / "config.pbtxt").read_text()
ENGINE = json.loads((EIGHT_B / "1" / "model.json").read_text())

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from([*schema.EngineJson.model_fields, "seed", "enable_prefix_caching", "unknown_key"])


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(keys, json_values, max_size=4), drop=st.sets(st.sampled_from(list(ENGINE))))
def test_any_model_json_values_parse_or_fail_as_input_errors(changes, drop):
    data = {k: v for k, v in ENGINE.items() if k not in drop} | changes
    try:
        schema.parse(data, "model.json")
    except InputError as exc:
        assert exc.line().count("\n") == 0


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_any_model_json_text_parses_or_fails_as_an_input_error(text):
    with contextlib.suppress(InputError):
        model.parse_engine_args(text, Path("model.json"))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(mutations(CONFIG, "{}[]:\"'#\n ,0-"), st.text(max_size=200)))
def test_any_config_pbtxt_parses_or_fails_as_an_input_error(text):
    with contextlib.suppress(InputError):
        model.parse_config(text, Path("config.pbtxt"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=mutations(CONFIG, "{}[]:\"'#\n ,0-"),
    engine=st.dictionaries(keys, json_values, max_size=3),
    folders=st.lists(st.sampled_from(["1", "2", "10", "²", "٣", ".hidden", "x"]), max_size=3),
)
def test_any_repository_layout_loads_or_fails_as_an_input_error(config, engine, folders):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        folder = root / EIGHT_B.name
        shutil.copytree(EIGHT_B, folder)
        (folder / "config.pbtxt").write_text(config)
        (folder / "1" / "model.json").write_text(json.dumps(ENGINE | engine))
        for name in folders:
            (folder / name).mkdir(exist_ok=True)
            (folder / name / "model.json").write_text(json.dumps(ENGINE))
        with contextlib.suppress(InputError):
            validate.validate(model.load_repository(root), SPEC, None)
