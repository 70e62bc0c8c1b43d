"""bayes_scaling: Bayesian experiment design for language-model scaling laws.

The law is fitted and extrapolated in float64, so importing the package turns on JAX's x64 mode.
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
