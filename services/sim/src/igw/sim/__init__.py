"""igw.sim: a vLLM-compatible model-server simulator (see `igw.sim.engine` for the model)."""
