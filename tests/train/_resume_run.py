"""A training run shared by the resume tests and their subprocesses.

``config()`` is the one definition of the run; ``python tests/train/_resume_run.py
CKPT_DIR`` trains it with checkpoints in CKPT_DIR (slowed down by a sleep in
the callback, so a test can kill it mid-run) and prints ``done`` at the end.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

EPOCHS = 40


def config():
    """(model, train, val, fit keyword arguments) of the run."""
    import jaxbp
    from jaxbp import data, optim

    dataset = data.load("blobs", n=200, seed=1)
    # batch norm (model state) and dropout (a PRNG key every step) included
    model = jaxbp.mlp([2, 8, 8, 3], "tanh", batchnorm=True, dropout=0.1)
    kwargs = {
        "loss": "cross_entropy",
        "optimizer": optim.adam(0.02),
        "batch_size": 16,
        "epochs": EPOCHS,
        "l2": 1e-3,
        "clip_norm": 5.0,
        "patience": EPOCHS,  # tracks the best epoch (and saves it) without stopping
        "seed": 3,
    }
    return model, dataset.train, dataset.val, kwargs


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint_dir")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per epoch")
    parser.add_argument("--x64", action="store_true")
    args = parser.parse_args(argv)
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from jaxbp.train import fit

    model, train, val, kwargs = config()
    fit(
        model,
        train,
        val,
        checkpoint_dir=args.checkpoint_dir,
        resume=True,
        callback=lambda record: time.sleep(args.sleep),
        **kwargs,
    )
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
