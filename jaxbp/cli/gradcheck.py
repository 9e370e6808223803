"""``jaxbp gradcheck``: the model the flags describe, its manual gradients checked
in float64 against autodiff and finite differences; the table printed.

Finite differences check a random sample of ``--fd-samples`` coordinates per
parameter leaf (seed ``--fd-seed``; ``--all-coordinates`` for every one), and
report each leaf on stderr as it is done, so a long check is never silent.

Exits 0 when every gradient agrees, 1 when one does not (the table shows which).
"""

from __future__ import annotations

import argparse
import sys
import time

from jaxbp.cli import building, parsing
from jaxbp.cli.parsing import number

#: Coordinates per leaf that ``jaxbp gradcheck`` checks by finite differences.
FD_SAMPLES = 16


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``gradcheck`` and its flags."""
    p = subparsers.add_parser(
        "gradcheck",
        help="check manual gradients against autodiff and finite differences",
    )
    parsing.add_model_flags(p)
    p.add_argument(
        "--batch",
        type=number(int, 1, strict=False),
        default=16,
        help="examples in the checked batch",
    )
    p.add_argument("--no-finite-differences", action="store_true")
    sample = p.add_mutually_exclusive_group()
    sample.add_argument(
        "--fd-samples",
        type=number(int, 1, strict=False),
        default=FD_SAMPLES,
        help=f"coordinates per parameter leaf checked by finite differences, "
        f"drawn at random (default {FD_SAMPLES})",
    )
    sample.add_argument(
        "--all-coordinates",
        action="store_true",
        help="finite differences on every coordinate (slow for a large model)",
    )
    p.add_argument(
        "--fd-seed",
        type=number(int, 0, strict=False, high=2**32),
        default=0,
        help="seed of the coordinates sampled for finite differences",
    )
    return p


def leaf_progress(start: float):
    """``check_grads``'s progress callback: one line per leaf on stderr."""

    def report(done: int, total: int, path: str, n: int) -> None:
        print(
            f"finite differences {done}/{total}: {path} "
            f"({n} coordinates, {time.perf_counter() - start:.1f}s)",
            file=sys.stderr,
            flush=True,
        )

    return report


def run(args) -> int:
    """Check the gradients of a batch of ``--batch`` training examples."""
    import jax

    import jaxbp

    parsing.apply_presets(args)
    parsing.check_model_flags(args)
    with jax.enable_x64(True):
        args.dtype = "float64"
        name, loss, model, (x, y) = _problem(args)
        n = x.shape[0]
        params, state = model.init_with_state(jax.random.key(args.seed))
        start = time.perf_counter()
        print("gradcheck: compiling and comparing with autodiff...", file=sys.stderr)
        report = jaxbp.check_grads(
            model,
            params,
            x,
            y,
            loss=loss,
            state=state,
            key=jax.random.key(args.seed + 1),
            finite_differences=not args.no_finite_differences,
            fd_samples=None if args.all_coordinates else args.fd_samples,
            fd_seed=args.fd_seed,
            progress=leaf_progress(start),
        )
    print(f"{name}: {building.model_summary(args, loss)}; batch of {n}, float64")
    print(report)
    return 0 if report.ok else 1


def _problem(args):
    """``(data name, loss, model, (x, y))``: the model the flags describe and
    a batch of ``--batch`` training examples (text: windows of the corpus)."""
    import jax

    from jaxbp import recipes

    if args.dataset == parsing.TEXT:
        from jaxbp.data.text import text_batch

        corpus = building.load_text(args)
        model = building.build_language_model(args, corpus.vocab_size)
        key = jax.random.key(args.seed + 2)
        batch = text_batch(corpus, key, args.batch, args.block_size)
        return "text", "cross_entropy", model, batch
    dataset = building.load_dataset(args)
    loss = building.choose_loss(args, dataset)
    model = building.build_model(args, dataset, loss)
    n = min(args.batch, dataset.train.x.shape[0])
    y = recipes.targets(dataset, dataset.train, loss)[:n]
    return dataset.name, loss, model, (dataset.train.x[:n], y)
