"""jaxbp: backpropagation by hand in JAX, checked against jax.grad."""
