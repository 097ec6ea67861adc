"""tritonfleet's Triton Python backend for vLLM (the CPU reference image's backend `vllm`).

Only `model` needs Triton's stub and vLLM; `request` and `responses` are pure and tested anywhere.
"""

import locale
import os

# The stub starts Python with the C locale, so open() would decode as ASCII, and torch (imported by
# vLLM) reads UTF-8 templates with open(). Switch before `model` imports vLLM; spawned workers inherit
# the environment variables.
os.environ.setdefault("LC_ALL", "C.UTF-8")
os.environ.setdefault("LANG", "C.UTF-8")
locale.setlocale(locale.LC_ALL, "C.UTF-8")
