"""Greedy reference output from vLLM itself, run inside the CPU image: `python offline_vllm.py MODEL_JSON`.

Reads prompts and sampling parameters as JSON on stdin, prints one JSON line per prompt on stdout.
The engine gets the same model.json as Triton's backend, so any difference is the backend's doing.
"""

import json
import sys
from pathlib import Path

from vllm import LLM, SamplingParams

if __name__ == "__main__":  # vLLM spawns workers, which re-import this module
    engine_args = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    request = json.load(sys.stdin)
    llm = LLM(**engine_args)
    outputs = llm.generate(request["prompts"], SamplingParams(**request["sampling"]))
    for output in outputs:
        completion = output.outputs[0]
        line = {
            "prompt": output.prompt,
            "prompt_token_ids": list(output.prompt_token_ids),
            "token_ids": list(completion.token_ids),
            "text": completion.text,
        }
        print("RESULT " + json.dumps(line), flush=True)
