"""One module per pipeline stage, each with ``run(cfg) -> dict`` and no argv or globals."""
