"""Data parallelism for fit: the batch split over a 1-D device mesh, the rest replicated.

Parameters, optimizer state and data are replicated; every batch is sharded on
its first axis; XLA inserts the gradient all-reduce. The same maths as on one
device, up to the order of the sums.

In a multi-process job (``jaxbp.train.distributed``) the mesh spans every
process's devices: ``devices`` counts the devices of the whole job, an equal
number from each process. Every process holds all of the data and computes the
same batch indices; the sharding constraint on the gathered batch
(``jaxbp.train.step``) lets XLA gather on each device only that device's rows
of the batch (the compiled step has one all-reduce, of the gradients and the
loss, and no all-gather of the batch).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxbp.checks import check_int


def data_parallel(devices):
    """``(batch_sharding, replicated)`` for ``devices`` > 1, else ``(None, None)``.

    In a job of P processes, ``devices`` must be a multiple of P: the mesh
    takes the first ``devices / P`` local devices of each process, in process
    order (so device ``i`` of the mesh gets rows ``i·B/devices …`` of a batch
    of B, as in one process with ``devices`` devices).
    """
    check_int("devices", devices, 1)
    processes = jax.process_count()
    if devices == 1 and processes == 1:
        return None, None
    mesh = jax.sharding.Mesh(np.array(mesh_devices(devices)), ("data",))
    spec = jax.sharding.PartitionSpec
    return (
        jax.sharding.NamedSharding(mesh, spec("data")),
        jax.sharding.NamedSharding(mesh, spec()),
    )


def mesh_devices(devices: int) -> list:
    """The ``devices`` devices of the mesh: ``devices / P`` from each of the
    job's P processes (P = 1 without a job); ValueError when there are not so many."""
    processes = jax.process_count()
    available = jax.devices()
    if processes == 1:
        if devices > len(available):
            raise ValueError(
                f"devices={devices} asked for, but only {len(available)} "
                f"{available[0].platform} device(s) are available"
            )
        return available[:devices]
    each = [[d for d in available if d.process_index == p] for p in range(processes)]
    fewest = min(len(local) for local in each)
    if devices % processes or devices // processes > fewest:
        raise ValueError(
            f"devices={devices}: a job of {processes} processes trains on the "
            f"same number of devices from each, so devices must be a multiple of "
            f"{processes} and at most {processes * fewest} (its processes have "
            f"{fewest} or more {available[0].platform} device(s) each)"
        )
    per_process = devices // processes
    return [d for local in each for d in local[:per_process]]


def check_batch_split(batch_size: int, devices: int) -> None:
    """Raise unless every device gets an equal share of each batch."""
    if batch_size % devices:
        raise ValueError(
            f"batch_size {batch_size} must be divisible by devices={devices} "
            "(each device takes an equal share of every batch)"
        )


def _is_key(leaf) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key
    )


def put_replicated(tree, replicated):
    """``tree``'s arrays copied onto every device of ``replicated``'s mesh.

    Every process must hold the same values: each puts its own host copy on
    its own devices (an array already on one device cannot be moved to
    another process's, so leaves go through the host; PRNG keys as their data).
    """

    def put(leaf):
        if leaf is None:
            return None
        if _is_key(leaf):
            data = put(np.asarray(jax.random.key_data(leaf)))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        return jax.device_put(np.asarray(leaf), replicated)

    return jax.tree_util.tree_map(put, tree)


def local_copies(tree):
    """``tree`` with each array that spans other processes' devices replaced by
    this process's copy (arrays are replicated, so every copy is the whole
    value); other leaves unchanged."""

    def local(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if not leaf.is_fully_replicated:
                raise ValueError("local_copies: an array sharded across processes")
            return leaf.addressable_data(0)
        return leaf

    return jax.tree_util.tree_map(local, tree)
