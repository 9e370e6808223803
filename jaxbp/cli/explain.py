"""``jaxbp explain``: one step of backpropagation on a small network, every number shown.

Parses the flags and prints; the work is :mod:`jaxbp.explain`. A user mistake
(a bad flag value, a weights file that cannot be read or does not fit, a --png
path that cannot be written) exits 2 with one line on stderr naming the flag
(and the file's field); anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxbp.cli.errors import UsageError
from jaxbp.cli.parsing import number

FORMATS = ("text", "json", "markdown")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``explain`` with its flags."""
    from jaxbp import losses

    parser = subparsers.add_parser(
        "explain",
        help="one step of backpropagation on a small network, every number shown",
        description="Forward pass, loss, chain rule from the output back to the "
        "input, and the gradient-descent update, with every formula and number. "
        "The default network is Matt Mazur's 'A Step by Step Backpropagation "
        "Example' (2015).",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE.json",
        help="the network and its data: sizes, activation, loss, weights, "
        "biases, inputs, targets (default: the post's network)",
    )
    parser.add_argument(
        "--activation",
        metavar="NAME[,NAME...]",
        help="activation of every layer, or one per layer (identity: none)",
    )
    parser.add_argument("--loss", choices=tuple(losses.LOSSES))
    parser.add_argument(
        "--lr", type=number(float, 0), default=0.5, help="learning rate η (0.5)"
    )
    parser.add_argument(
        "--steps",
        type=number(int, 1, strict=False),
        metavar="N",
        help="also train N steps and print the loss after the first steps and after N",
    )
    parser.add_argument(
        "--update-biases",
        action="store_true",
        help="update the biases too (the post leaves them)",
    )
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--png", metavar="FILE", help="write a picture of the network")
    parser.add_argument(
        "--max-units",
        type=number(int, 1, strict=False),
        metavar="N",
        default=4,
        help="show unit by unit when no layer is wider, else matrices cut to this (4)",
    )
    return parser


def _network(args):
    """The network of --weights (or the post's), with --activation/--loss."""
    from jaxbp import explain

    data = explain.MAZUR if args.weights is None else explain.read_network(args.weights)
    if isinstance(data, dict):
        data = dict(data)
        if args.activation is not None:
            names = args.activation.split(",")
            data["activation"] = names[0] if len(names) == 1 else names
        if args.loss is not None:
            data["loss"] = args.loss
    return explain.parse_network(data)


def _blame(args, field) -> str:
    """The flag (and the file) a bad field came from."""
    if field == "activation" and args.activation is not None:
        return "--activation"
    if field in ("loss", "targets") and args.loss is not None:
        return f"--loss {args.loss}"
    return f"--weights {args.weights}" if args.weights else "--activation/--loss"


def run(args) -> int:
    """Print the walk-through; 0, or 2 for a user mistake."""
    import jax

    from jaxbp import explain

    try:
        network = _network(args)
    except explain.NetworkError as error:
        raise UsageError(f"{_blame(args, error.field)}: {error}")
    if args.png and not Path(args.png).resolve().parent.is_dir():
        raise UsageError(f"--png {args.png}: no such directory")
    with jax.enable_x64(True):
        model, params = explain.build(network)
        options = {"loss": network.loss, "learning_rate": args.lr}
        options["update_biases"] = args.update_biases
        data = (model, params, network.inputs, network.targets)
        trace = explain.explain_step(*data, **options)
        curve = (
            explain.loss_curve(*data, steps=args.steps, **options)
            if args.steps
            else None
        )
    print(_render(trace, curve, args), end="")
    if args.png:
        try:
            explain.draw_network(trace, args.png, max_units=args.max_units)
        except OSError as error:
            raise UsageError(f"--png {args.png}: {error}")
        print(f"wrote {args.png}", file=sys.stderr)
    return 0


def _render(trace, curve, args) -> str:
    from jaxbp import explain

    if args.format == "json":
        return json.dumps(explain.trace_dict(trace, curve), indent=1) + "\n"
    sections = explain.sections(trace, max_units=args.max_units, curve=curve)
    if args.format == "markdown":
        return explain.to_markdown(sections)
    return explain.to_text(sections)
