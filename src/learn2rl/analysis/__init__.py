"""Pure numerical analyses used by the experiments (numpy / scipy, JAX where a grid of agents
is simulated; no plotting, no files): each takes arrays or ``EvalResult``s and returns numbers."""
