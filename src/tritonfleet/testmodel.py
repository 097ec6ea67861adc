"""A tiny random-weight Llama that vLLM loads by path, made here with no hub access and no torch.

`generate(dest)` writes a Hugging Face-layout model directory: `config.json`, `model.safetensors`
(random weights, HF Llama tensor names), a byte-level BPE `tokenizer.json` trained on a corpus built
into this module, `tokenizer_config.json` and `generation_config.json`. The model says nothing
sensible; it exists so that the CPU serving stack (vLLM, Triton's vLLM backend, benchmarks) can be
exercised end to end on any machine.

Determinism: the same seed gives byte-identical files for the same numpy, safetensors and tokenizers
versions (numpy's Generator streams and the tokenizer trainer's tie-breaking are what could change
between versions). The tokenizer does not depend on the seed; the weights do.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from tritonfleet.errors import InputError
from tritonfleet.files import describe_os_error

# --- the model's shape -------------------------------------------------------------------------

NUM_LAYERS = 2
HIDDEN_SIZE = 256
NUM_HEADS = 4
NUM_KV_HEADS = 2
HEAD_DIM = 64
INTERMEDIATE_SIZE = 512
VOCAB_SIZE = 2048
MAX_POSITIONS = 2048
INIT_STD = 0.02

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|begin_of_text|>"
EOS_TOKEN = "<|end_of_text|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)
PAD_ID, BOS_ID, EOS_ID = range(len(SPECIAL_TOKENS))
# The trainer stops merging when the corpus runs out of pairs; ids past its vocabulary are filled with
# reserved special tokens so that every id the model can emit decodes.
RESERVED_TOKEN = "<|reserved_{}|>"

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)

FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
)


def model_config() -> dict[str, Any]:
    """The `config.json` contents: a Llama with the shape above."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "num_hidden_layers": NUM_LAYERS,
        "hidden_size": HIDDEN_SIZE,
        "num_attention_heads": NUM_HEADS,
        "num_key_value_heads": NUM_KV_HEADS,
        "head_dim": HEAD_DIM,
        "intermediate_size": INTERMEDIATE_SIZE,
        "hidden_act": "silu",
        "vocab_size": VOCAB_SIZE,
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "initializer_range": INIT_STD,
        # The file holds float32 values that bfloat16 represents exactly: serving with
        # dtype=bfloat16 or float32 computes with the same weights.
        "torch_dtype": "float32",
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
    }


def tensor_shapes() -> dict[str, tuple[int, ...]]:
    """Every weight's name (exactly as Hugging Face's LlamaForCausalLM names it) and shape."""
    q_out = NUM_HEADS * HEAD_DIM
    kv_out = NUM_KV_HEADS * HEAD_DIM
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB_SIZE, HIDDEN_SIZE)}
    for n in range(NUM_LAYERS):
        layer = f"model.layers.{n}"
        shapes |= {
            f"{layer}.self_attn.q_proj.weight": (q_out, HIDDEN_SIZE),
            f"{layer}.self_attn.k_proj.weight": (kv_out, HIDDEN_SIZE),
            f"{layer}.self_attn.v_proj.weight": (kv_out, HIDDEN_SIZE),
            f"{layer}.self_attn.o_proj.weight": (HIDDEN_SIZE, q_out),
            f"{layer}.mlp.gate_proj.weight": (INTERMEDIATE_SIZE, HIDDEN_SIZE),
            f"{layer}.mlp.up_proj.weight": (INTERMEDIATE_SIZE, HIDDEN_SIZE),
            f"{layer}.mlp.down_proj.weight": (HIDDEN_SIZE, INTERMEDIATE_SIZE),
            f"{layer}.input_layernorm.weight": (HIDDEN_SIZE,),
            f"{layer}.post_attention_layernorm.weight": (HIDDEN_SIZE,),
        }
    shapes["model.norm.weight"] = (HIDDEN_SIZE,)
    shapes["lm_head.weight"] = (VOCAB_SIZE, HIDDEN_SIZE)
    return shapes


def weights(seed: int) -> dict[str, np.ndarray]:
    """Random weights: normal(0, INIT_STD) matrices, norms of ones, drawn in `tensor_shapes()` order."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, shape in tensor_shapes().items():
        if len(shape) == 1:
            tensors[name] = np.ones(shape, dtype=np.float32)
            continue
        values = rng.standard_normal(shape, dtype=np.float32) * np.float32(INIT_STD)
        # Keep the top 16 bits only: the value is then exactly representable in bfloat16.
        tensors[name] = (values.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    return tensors


# --- the tokenizer -----------------------------------------------------------------------------

# Fixed English prose and word lists (whitespace-separated), so that ordinary prompts tokenize into
# sensible pieces.
_PROSE = """\
Hello, my name is Alice. What is your name?
The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is Rome.
The capital of Spain is Madrid, and the capital of Japan is Tokyo.
Once upon a time, there was a little girl who lived in a small house near the forest.
The quick brown fox jumps over the lazy dog.
What is the meaning of life? Many people have asked this question for thousands of years.
The future of artificial intelligence is bright, but it needs careful thought and good engineering.
A language model predicts the next word in a sentence, one token at a time.
The server answered the request in less than a second, and the client printed the result.
Please write a short story about a robot who learns to paint.
Summarize the following text in one sentence.
Translate the following sentence into French: the weather is nice today.
Question: How many days are there in a week? Answer: There are seven days in a week.
Question: What color is the sky? Answer: The sky is blue on a clear day.
The numbers are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 42, 100, 256, 512, 1024, 2048.
In 1969, people walked on the moon for the first time.
"Where are you going?" she asked. "To the market," he said, "and then home."
It's a beautiful day, isn't it? I don't know; we'll see what they're doing.
"""

_NAMES = "Alice Bob Carol David Emma Frank Grace Henry Isabel Jack Karen Liam Maria Noah Olivia Peter"
_PLACES = "London Paris Berlin Madrid Rome Tokyo Sydney Toronto Cairo Lisbon Vienna Dublin Oslo Seoul"
_NOUNS = """
time year people way day man woman child world life hand part place case week company system program
question work government number night point home water room mother father area money story fact month
lot right study book eye job word business issue side kind head house service friend power hour game
line end member law car city community name president team minute idea kid body information back
parent face others level office door health person art war history party result change morning reason
research girl guy moment air teacher force education food music river garden window table computer
machine server model engine network question answer letter paper country mountain forest animal bird
tree flower city road train ship island ocean weather morning evening summer winter language market
doctor student village kitchen picture problem language window street bridge castle dream journey
"""
_VERBS = """
be have do say get make go know take see come think look want give use find tell ask work seem feel
try leave call keep let begin help talk turn start show hear play run move like live believe hold bring
happen write provide sit stand lose pay meet include continue set learn change lead understand watch
follow stop create speak read allow add spend grow open walk win offer remember love consider appear
buy wait serve die send expect build stay fall cut reach kill remain suggest raise pass sell require
report decide pull explain answer paint travel visit carry
"""
_PAST = """
was had did said got made went knew took saw came thought looked wanted gave used found told asked
worked seemed felt tried left called kept began helped talked turned started showed heard played ran
moved liked lived believed held brought happened wrote sat stood lost paid met learned changed led
understood watched followed stopped created spoke read added grew opened walked won offered remembered
loved bought waited served sent expected built stayed fell reached remained decided explained painted
"""
_ADJECTIVES = """
good new first last long great little own other old right big high different small large next early
young important few public bad same able best better sure free true full special easy clear recent
certain personal open red blue green white black dark bright happy quiet simple strong warm cold
beautiful careful famous final friendly heavy hungry kind lazy modern nice quick rich short slow tall
tiny wise wonderful busy empty fast
"""
_ADVERBS = "very really always often never sometimes quickly slowly carefully quietly together again"
_PREPOSITIONS = "in on at near under over with without behind before after through across into from"
_TEMPLATES = (
    "The {adj} {noun} {past} the {noun2} {prep} the {noun3}.",
    "{name} {past} to {place} {prep} a {adj} {noun}.",
    "Why did the {noun} {verb} the {adj} {noun2}?",
    "A {adj} {noun} can {verb} {adv}, but the {noun2} cannot.",
    "{name} and {name2} {adv} {verb} {prep} the {adj} {noun}.",
    "In {place}, the {noun} is {adj} and the {noun2} is {adj2}.",
    "Do you {verb} the {noun}? Yes, I {verb} it {adv}.",
    "There are {number} {noun}s {prep} the {noun2}.",
    '{name} said, "I {past} a {adj} {noun} in {place}."',
    "If you {verb} the {noun}, it will {verb2} {adv}.",
)
CORPUS_SEED = 20240601
CORPUS_SENTENCES = 400


def corpus() -> list[str]:
    """The tokenizer's training text: fixed prose plus sentences drawn from word lists with a fixed seed."""
    rng = np.random.default_rng(CORPUS_SEED)

    def pick(words: str) -> str:
        choices = words.split()
        return choices[int(rng.integers(len(choices)))]

    lines = _PROSE.splitlines()
    for _ in range(CORPUS_SENTENCES):
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        lines.append(
            template.format(
                adj=pick(_ADJECTIVES),
                adj2=pick(_ADJECTIVES),
                adv=pick(_ADVERBS),
                name=pick(_NAMES),
                name2=pick(_NAMES),
                noun=pick(_NOUNS),
                noun2=pick(_NOUNS),
                noun3=pick(_NOUNS),
                number=int(rng.integers(2, 1000)),
                past=pick(_PAST),
                place=pick(_PLACES),
                prep=pick(_PREPOSITIONS),
                verb=pick(_VERBS),
                verb2=pick(_VERBS),
            )
        )
    # Every word once more at the start of a line and capitalized, so that those forms get merges too.
    for words in (_NOUNS, _VERBS, _PAST, _ADJECTIVES, _ADVERBS):
        lines.append(" ".join(words.split()))
        lines.append(" ".join(w.capitalize() for w in words.split()))
    return lines


def build_tokenizer() -> Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 / Llama 3 style) with exactly VOCAB_SIZE ids."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    learned = tokenizer.get_vocab_size()
    tokenizer.add_special_tokens(
        [AddedToken(RESERVED_TOKEN.format(i), special=True) for i in range(VOCAB_SIZE - learned)]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, BOS_ID)],
    )
    return tokenizer


def tokenizer_config() -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "model_max_length": MAX_POSITIONS,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def generation_config() -> dict[str, Any]:
    return {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID}


# --- writing -----------------------------------------------------------------------------------


def _check_dest(dest: Path) -> None:
    if dest.parent.exists() and not dest.parent.is_dir():
        raise InputError(dest, None, f"{dest.parent} is a file, not a directory")
    if not dest.parent.is_dir():
        raise InputError(dest, None, f"parent directory {dest.parent} does not exist")
    if dest.is_dir():
        if any(dest.iterdir()):
            raise InputError(dest, None, "exists and is not empty; give a new or empty directory")
    elif dest.exists() or dest.is_symlink():
        raise InputError(dest, None, "exists and is not a directory")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def generate(dest: Path, seed: int = 0) -> Path:
    """Write the test model into `dest` (new, or an empty directory) and return `dest`.

    The files are built in a temporary directory beside `dest` and renamed into place at the end, so
    `dest` never holds a partial model.
    """
    dest = Path(dest)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(dest, "seed", f"must be a non-negative integer, got {seed!r}")
    _check_dest(dest)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    except OSError as exc:
        raise InputError(dest, None, f"cannot write the test model: {describe_os_error(exc)}") from exc
    try:
        _write_json(tmp / "config.json", model_config())
        _write_json(tmp / "generation_config.json", generation_config())
        save_file(weights(seed), tmp / "model.safetensors", metadata={"format": "pt"})
        build_tokenizer().save(str(tmp / "tokenizer.json"))
        _write_json(tmp / "tokenizer_config.json", tokenizer_config())
        # mkdtemp makes 0700 and safetensors writes 0600, but the server reading the model runs as
        # another user (uid 1000 in the CPU image): the model is public data, make it world-readable.
        for file in tmp.iterdir():
            file.chmod(0o644)
        tmp.chmod(0o755)
        _check_dest(dest)  # again: something may have appeared while we wrote
        # rename(2) replaces an empty directory atomically.
        tmp.replace(dest)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
        raise InputError(dest, None, f"cannot write the test model: {reason}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def describe(dest: Path) -> dict[str, Any]:
    """What `generate` wrote: parameter count, tensor count, vocab size, and each file's size in bytes."""
    dest = Path(dest)
    missing = [name for name in FILES if not (dest / name).is_file()]
    if missing:
        raise InputError(dest, None, f"not a test model: missing {', '.join(missing)}")
    parameters = 0
    with safe_open(str(dest / "model.safetensors"), framework="numpy") as weights_file:
        names = list(weights_file.keys())
        for name in names:
            parameters += int(np.prod(weights_file.get_slice(name).get_shape()))
    config = json.loads((dest / "config.json").read_text(encoding="utf-8"))
    sizes = {name: (dest / name).stat().st_size for name in FILES}
    return {
        "path": str(dest),
        "architecture": config["architectures"][0],
        "parameters": parameters,
        "tensors": len(names),
        "vocab_size": config["vocab_size"],
        "files": sizes,
        "total_bytes": sum(sizes.values()),
    }


__all__ = ["describe", "generate", "model_config", "tensor_shapes"]
