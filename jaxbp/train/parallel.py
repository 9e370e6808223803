"""Data parallelism for fit: the batch split over a 1-D device mesh, the rest replicated.

Parameters, optimizer state and data are replicated; every batch is sharded on
its first axis; XLA inserts the gradient all-reduce. The same maths as on one
device, up to the order of the sums.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxbp.checks import check_int


def data_parallel(devices):
    """``(batch_sharding, replicated)`` for ``devices`` > 1, else ``(None, None)``."""
    check_int("devices", devices, 1)
    if devices == 1:
        return None, None
    available = jax.devices()
    if devices > len(available):
        raise ValueError(
            f"devices={devices} asked for, but only {len(available)} "
            f"{available[0].platform} device(s) are available"
        )
    mesh = jax.sharding.Mesh(np.array(available[:devices]), ("data",))
    spec = jax.sharding.PartitionSpec
    return (
        jax.sharding.NamedSharding(mesh, spec("data")),
        jax.sharding.NamedSharding(mesh, spec()),
    )


def check_batch_split(batch_size: int, devices: int) -> None:
    """Raise unless every device gets an equal share of each batch."""
    if batch_size % devices:
        raise ValueError(
            f"batch_size {batch_size} must be divisible by devices={devices} "
            "(each device takes an equal share of every batch)"
        )
