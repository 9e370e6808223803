"""jaxbp's benchmarks: timing scripts, peers, XLA introspection.

Not part of the installed package (``jaxbp`` never imports it). Run the
scripts from the repository root::

    python benchmarks/benchmark.py [--quick] [--out DIR]        # gradients, memory, training
    python benchmarks/train_benchmark.py [--quick] [--out DIR]  # train steps, checkpoint saves
    python benchmarks/peers.py [--quick] [--out DIR]            # jaxbp vs JAX, Flax, Equinox, PyTorch, scikit-learn

Each script puts the repository root on ``sys.path`` so that its modules
import each other as ``benchmarks.NAME``; other code (experiments, tests)
does the same to use :mod:`benchmarks.timing` (the one interleaved timer)
and :mod:`benchmarks.report` (the one table printer and JSON writer).
"""
