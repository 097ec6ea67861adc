"""Waiting for a server to answer 200 on a health URL, with a deadline (nothing may wait forever)."""

from __future__ import annotations

import time

import requests


def wait_until_ok(url: str, timeout: float, interval: float = 2.0) -> None:
    """Polls `url` until it answers 200; TimeoutError naming the URL and the last answer otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status = requests.get(url, timeout=min(interval + 1, 5)).status_code
            if status == 200:
                return
            last = f"HTTP {status}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(interval)
    raise TimeoutError(f"{url}: not ready after {timeout:g} s (last: {last})")
