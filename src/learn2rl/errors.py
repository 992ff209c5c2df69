"""The one exception type user-facing code raises for bad input.

The CLI turns a ``Learn2RLError`` into a one-line message and a non-zero exit, so a mistyped id or
an out-of-range setting never surfaces as a traceback from deep inside JAX.
"""


class Learn2RLError(ValueError):
    """Bad input from a user: an unknown id, a value out of range, a corrupt checkpoint."""
