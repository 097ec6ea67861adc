"""Byte units. Sizes are binary everywhere in tritonfleet: GiB = 2^30 bytes, as vLLM prints them."""

from __future__ import annotations

MiB = 1 << 20
GiB = 1 << 30
