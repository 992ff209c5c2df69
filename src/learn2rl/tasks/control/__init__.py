"""Continuous-control task families (point navigation; locomotion on a JAX physics engine)."""
