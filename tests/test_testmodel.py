"""The tiny random-weight Llama: layout vLLM loads, determinism, tokenizer, bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from tritonfleet import testmodel
from tritonfleet.errors import InputError

ENGLISH = (
    "The capital of France is Paris. Hello, my name is Alice! "
    "What is the meaning of life? It's 42, isn't it?\nKubernetes schedules 3 containers."
)


def _sha256s(model: Path) -> dict[str, str]:
    return {name: hashlib.sha256((model / name).read_bytes()).hexdigest() for name in testmodel.FILES}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Seed 0 twice (one into an existing empty directory) and seed 1."""
    root = tmp_path_factory.mktemp("testmodels")
    (root / "seed0-again").mkdir()
    return {
        "seed0": testmodel.generate(root / "seed0"),
        "seed0-again": testmodel.generate(root / "seed0-again", seed=0),
        "seed1": testmodel.generate(root / "seed1", seed=1),
    }


def test_writes_exactly_the_model_files(models):
    assert sorted(p.name for p in models["seed0"].iterdir()) == sorted(testmodel.FILES)
    # Nothing left behind beside dest: the temporary build directory was renamed away.
    assert sorted(p.name for p in models["seed0"].parent.iterdir()) == ["seed0", "seed0-again", "seed1"]


def test_config_is_a_small_llama(models):
    config = json.loads((models["seed0"] / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["model_type"] == "llama"
    assert config["num_hidden_layers"] == 2
    assert config["hidden_size"] == 256
    assert config["num_attention_heads"] == 4
    assert config["num_key_value_heads"] == 2
    assert config["head_dim"] == 64
    assert config["num_attention_heads"] * config["head_dim"] == config["hidden_size"]
    assert config["intermediate_size"] == 512
    assert config["vocab_size"] == 2048
    assert config["max_position_embeddings"] == 2048
    assert config["tie_word_embeddings"] is False
    assert config["torch_dtype"] in ("float32", "bfloat16")
    assert config["rms_norm_eps"] > 0
    assert config["rope_theta"] > 0


def test_special_token_ids_agree_across_files(models):
    model = models["seed0"]
    config = json.loads((model / "config.json").read_text())
    generation = json.loads((model / "generation_config.json").read_text())
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    for role in ("bos", "eos", "pad"):
        token_id = tokenizer.token_to_id(tokenizer_config[f"{role}_token"])
        assert token_id is not None
        assert config[f"{role}_token_id"] == token_id
        assert generation[f"{role}_token_id"] == token_id


def test_tensor_names_shapes_and_dtype(models):
    tensors = load_file(models["seed0"] / "model.safetensors")
    expected = {
        "model.embed_tokens.weight": (2048, 256),
        "model.norm.weight": (256,),
        "lm_head.weight": (2048, 256),
    }
    for n in range(2):
        expected |= {
            f"model.layers.{n}.self_attn.q_proj.weight": (256, 256),
            f"model.layers.{n}.self_attn.k_proj.weight": (128, 256),
            f"model.layers.{n}.self_attn.v_proj.weight": (128, 256),
            f"model.layers.{n}.self_attn.o_proj.weight": (256, 256),
            f"model.layers.{n}.mlp.gate_proj.weight": (512, 256),
            f"model.layers.{n}.mlp.up_proj.weight": (512, 256),
            f"model.layers.{n}.mlp.down_proj.weight": (256, 512),
            f"model.layers.{n}.input_layernorm.weight": (256,),
            f"model.layers.{n}.post_attention_layernorm.weight": (256,),
        }
    assert {name: t.shape for name, t in tensors.items()} == expected
    assert testmodel.tensor_shapes() == expected
    assert {t.dtype for t in tensors.values()} == {np.dtype(np.float32)}


def test_weights_are_small_random_and_exact_in_bfloat16(models):
    tensors = load_file(models["seed0"] / "model.safetensors")
    q = tensors["model.layers.0.self_attn.q_proj.weight"]
    assert 0.015 < float(q.std()) < 0.025
    assert abs(float(q.mean())) < 0.001
    assert np.all(tensors["model.norm.weight"] == 1)
    for t in tensors.values():
        assert not np.any(t.view(np.uint32) & 0xFFFF), "low 16 bits set: not exact in bfloat16"


def test_same_seed_gives_identical_bytes(models):
    assert _sha256s(models["seed0"]) == _sha256s(models["seed0-again"])


def test_another_process_writes_the_same_bytes(models, tmp_path):
    # The tokenizer trainer keeps hash maps whose seeds change from process to process.
    dest = tmp_path / "model"
    code = "import sys; from tritonfleet import testmodel; testmodel.generate(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(dest)], check=True)
    assert _sha256s(dest) == _sha256s(models["seed0"])


def test_different_seed_gives_different_weights_and_same_tokenizer(models):
    zero, one = _sha256s(models["seed0"]), _sha256s(models["seed1"])
    assert zero["model.safetensors"] != one["model.safetensors"]
    assert {k: v for k, v in zero.items() if k != "model.safetensors"} == {
        k: v for k, v in one.items() if k != "model.safetensors"
    }
    a = load_file(models["seed0"] / "model.safetensors")
    b = load_file(models["seed1"] / "model.safetensors")
    assert not np.array_equal(a["model.embed_tokens.weight"], b["model.embed_tokens.weight"])


def test_tokenizer_round_trips_english_and_fits_the_model(models):
    tokenizer = Tokenizer.from_file(str(models["seed0"] / "tokenizer.json"))
    config = json.loads((models["seed0"] / "config.json").read_text())
    assert tokenizer.get_vocab_size() <= config["vocab_size"]
    encoding = tokenizer.encode(ENGLISH)
    assert encoding.tokens[0] == testmodel.BOS_TOKEN
    assert tokenizer.decode(encoding.ids) == ENGLISH
    assert max(encoding.ids) < config["vocab_size"]
    # Trained on English: common words are single tokens, not bytes.
    assert tokenizer.encode("The capital of France is", add_special_tokens=False).tokens == [
        "The",
        "Ġcapital",
        "Ġof",
        "ĠFrance",
        "Ġis",
    ]


def test_every_model_id_decodes(models):
    tokenizer = Tokenizer.from_file(str(models["seed0"] / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == testmodel.VOCAB_SIZE
    assert all(tokenizer.id_to_token(i) is not None for i in range(testmodel.VOCAB_SIZE))


def test_describe_counts_parameters_and_bytes(models):
    info = testmodel.describe(models["seed0"])
    assert info["parameters"] == sum(int(np.prod(s)) for s in testmodel.tensor_shapes().values())
    assert info["parameters"] == 2_229_504
    assert info["tensors"] == 21
    assert set(info["files"]) == set(testmodel.FILES)
    assert info["files"]["model.safetensors"] > info["parameters"] * 4
    assert info["total_bytes"] == sum(info["files"].values())


def test_describe_names_a_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(InputError, match=r"not a test model: missing config.json") as caught:
        testmodel.describe(tmp_path)
    assert caught.value.source == str(tmp_path)


def test_non_empty_dest_is_refused_and_left_alone(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match=r"exists and is not empty") as caught:
        testmodel.generate(tmp_path)
    assert caught.value.source == str(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_dest_that_is_a_file_is_refused(tmp_path):
    dest = tmp_path / "model"
    dest.write_text("")
    with pytest.raises(InputError, match=r"model: exists and is not a directory"):
        testmodel.generate(dest)


def test_missing_parent_is_refused(tmp_path):
    dest = tmp_path / "no" / "such" / "model"
    with pytest.raises(InputError, match=r"parent directory .* does not exist") as caught:
        testmodel.generate(dest)
    assert caught.value.source == str(dest)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seed_is_refused_before_writing(tmp_path, seed):
    dest = tmp_path / "model"
    with pytest.raises(InputError, match=r"model: seed: must be a non-negative integer") as caught:
        testmodel.generate(dest, seed=seed)
    assert caught.value.field == "seed"
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(testmodel, "save_file", broken)
    # One line naming the model's folder (the CLI prints it), not an OSError from a temporary path.
    with pytest.raises(InputError, match=r"/model: cannot write the test model: disk full$"):
        testmodel.generate(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_files_are_readable_by_the_server_user(models):
    # The CPU image's tritonserver runs as uid 1000 and reads the bind-mounted model.
    model = next(iter(models.values()))
    assert model.stat().st_mode & 0o777 == 0o755
    assert {f.name: f.stat().st_mode & 0o777 for f in model.iterdir()} == dict.fromkeys(
        testmodel.FILES, 0o644
    )
