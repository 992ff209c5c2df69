"""Pure numerical analyses used by the experiments (numpy / scipy; no JAX, no plotting)."""
