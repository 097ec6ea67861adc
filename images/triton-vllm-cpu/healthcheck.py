"""Container health: Triton's readiness endpoint answers 200 (every model loaded, strict readiness)."""

import os
import sys
import urllib.request

url = f"http://127.0.0.1:{os.environ['TRITON_HTTP_PORT']}/v2/health/ready"
try:
    with urllib.request.urlopen(url, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
