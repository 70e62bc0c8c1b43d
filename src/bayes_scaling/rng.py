"""A NumPy generator from a JAX key, for draws NumPy makes faster than JAX on the CPU."""

import jax
import numpy as np

__all__ = ["numpy_generator"]


def numpy_generator(rng_key) -> np.random.Generator:
    """A ``numpy.random.Generator`` seeded by ``rng_key`` (the same key, the same stream)."""
    return np.random.default_rng(int(jax.random.randint(rng_key, (), 0, 2**31 - 1)))
