"""`tritonfleet memory estimate`: one vLLM instance's memory per GPU, from a model's config.json."""

from __future__ import annotations

import argparse

from tritonfleet.cli.common import finite_float, path_arg, whole_number
from tritonfleet.limits import MAX_GPU_BYTES, MAX_PARALLEL, MAX_SEQUENCES, MAX_TOKENS
from tritonfleet.units import GiB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="memory_command", required=True, metavar="ACTION")
    est = actions.add_parser(
        "estimate",
        help="weights, activation, CUDA graphs and KV cache per GPU for given engine settings",
        description=(
            "Estimates one vLLM instance's memory per GPU as the pinned vLLM accounts for it. An omitted "
            "option takes that vLLM's default. GiB = 2^30 bytes."
        ),
    )
    est.add_argument(
        "--model-config", type=path_arg, required=True, metavar="PATH", help="config.json or its folder"
    )
    est.add_argument(
        "--gpu-total-gib",
        type=finite_float(0, MAX_GPU_BYTES / GiB, low_open=True),
        required=True,
        metavar="G",
        help="memory CUDA reports per GPU",
    )
    est.add_argument(
        "--gpu-memory-utilization",
        type=finite_float(0, 1, low_open=True),
        metavar="U",
        help="fraction of the GPU vLLM may use (default: the pinned vLLM's)",
    )
    est.add_argument("--tensor-parallel-size", type=whole_number(1, MAX_PARALLEL), default=1, metavar="N")
    est.add_argument("--pipeline-parallel-size", type=whole_number(1, MAX_PARALLEL), default=1, metavar="N")
    est.add_argument("--dtype", choices=("auto", "bfloat16", "float16", "float32"), default="auto")
    est.add_argument("--kv-cache-dtype", choices=("auto", "fp8"), default="auto")
    est.add_argument(
        "--max-model-len", type=whole_number(1, MAX_TOKENS), metavar="L", help="default: the model's maximum"
    )
    est.add_argument(
        "--max-num-seqs", type=whole_number(1, MAX_SEQUENCES), metavar="S", help="default: the pinned vLLM's"
    )
    est.add_argument("--max-num-batched-tokens", type=whole_number(1, MAX_TOKENS), metavar="B")
    est.add_argument("--no-chunked-prefill", action="store_true", help="as enable_chunked_prefill: false")
    est.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs")
    est.add_argument(
        "--sampler",
        choices=("flashinfer", "native"),
        default="flashinfer",
        help="top-k/top-p sampler: FlashInfer (vLLM's CUDA default) or PyTorch's",
    )
    est.add_argument(
        "--compute-capability",
        type=finite_float(0, 100),
        metavar="X.Y",
        help="the GPU generation, for kernels that lay weights out by it (MXFP4 experts); default Hopper",
    )
    est.add_argument("--format", choices=("json", "table"), default="json")


def validate(args: argparse.Namespace) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.table import Table

    from tritonfleet.cli.common import print_json
    from tritonfleet.console import console
    from tritonfleet.sizing import memory

    source = str(args.model_config)
    shape = memory.shape_from_config(memory.read_config(args.model_config), source)
    given = {
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_num_seqs": args.max_num_seqs,
        "compute_capability": args.compute_capability,
    }
    settings = replace(
        memory.Settings(gpu_total_bytes=int(args.gpu_total_gib * GiB)),
        tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        dtype=args.dtype,
        kv_cache_dtype=args.kv_cache_dtype,
        max_model_len=args.max_model_len,
        max_num_batched_tokens=args.max_num_batched_tokens,
        enable_chunked_prefill=not args.no_chunked_prefill,
        enforce_eager=args.enforce_eager,
        sampler=args.sampler,
        **{k: v for k, v in given.items() if v is not None},
    )
    result = memory.estimate(shape, settings, source)
    if args.format == "json":
        print_json(result.to_json())
        return 0
    title = f"{source}: per GPU, tp {args.tensor_parallel_size} x pp {args.pipeline_parallel_size}"
    table = Table(title=title)
    table.add_column("item")
    table.add_column("value", justify="right")
    for key, value in result.to_json().items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    console().print(table)
    return 0
