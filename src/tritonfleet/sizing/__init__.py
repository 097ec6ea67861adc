"""Sizing vLLM engines for GPUs: what a config says (shape), the estimate (memory), plans (planner).

MARGIN lives here, apart from the planner, so that the CLI can show it in --help without loading it.
"""

# On top of the estimate: its measured KV error (calibration.py, tests/test_memory_h200.py) stays well
# inside this.
MARGIN = 0.05
