"""The performance gate: load generators' results, SLOs and baselines (issue 13, being built)."""
