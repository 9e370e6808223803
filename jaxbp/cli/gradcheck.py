"""``jaxbp gradcheck``: the model the flags describe, its manual gradients checked
in float64 against autodiff and finite differences; the table printed.

Exits 0 when every gradient agrees, 1 when one does not (the table shows which).
"""

from __future__ import annotations

import argparse

from jaxbp.cli import building, parsing
from jaxbp.cli.parsing import number


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
    return p


def run(args) -> int:
    """Check the gradients of a batch of ``--batch`` training examples."""
    import jax

    import jaxbp
    from jaxbp import recipes

    parsing.apply_presets(args)
    parsing.check_model_flags(args)
    with jax.enable_x64(True):
        dataset = building.load_dataset(args)
        loss = building.choose_loss(args, dataset)
        args.dtype = "float64"
        model = building.build_model(args, dataset, loss)
        params, state = model.init_with_state(jax.random.key(args.seed))
        n = min(args.batch, dataset.train.x.shape[0])
        x = dataset.train.x[:n]
        y = recipes.targets(dataset, dataset.train, loss)[:n]
        report = jaxbp.check_grads(
            model,
            params,
            x,
            y,
            loss=loss,
            state=state,
            key=jax.random.key(args.seed + 1),
            finite_differences=not args.no_finite_differences,
        )
    print(
        f"{dataset.name}: {building.model_summary(args, loss)}; batch of {n}, float64"
    )
    print(report)
    return 0 if report.ok else 1
