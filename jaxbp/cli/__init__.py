"""The ``jaxbp`` command line: ``jaxbp train``, ``gradcheck``, ``explain`` and ``sample``.

It parses arguments and prints, nothing else: the models, optimizers and
presets come from :mod:`jaxbp.recipes`, training from :mod:`jaxbp.train`.
One module per command, each with ``add_parser(subparsers)`` and
``run(args) -> int``.

Exit status:

* 0: done (``gradcheck``: every gradient agrees).
* 1: ``gradcheck`` found a gradient that disagrees (its table shows which);
  or anything unexpected, a bug: its traceback is printed.
* 2: a user mistake: a bad flag value, a bad or missing file named by a flag
  (``--data-dir``, ``--checkpoint-dir``), flags that contradict each other.
  One line on stderr naming the flag as typed, no traceback.
* 3: the training run diverged (its loss or parameters became NaN or
  infinite): one line on stderr naming the epoch and the step.
* 4: ``jaxbp train`` as one process of a multi-process job
  (``--num-processes``, ``jaxbp.cli.distributed``): the job could not be
  joined within ``--join-timeout``, or another process died. One line.
* 130 / 143: stopped by SIGINT (Ctrl-C) / SIGTERM. ``jaxbp train`` stops after
  the running epoch and first writes ``metrics.json`` (``"interrupted":
  true``), ``curves.png`` and a checkpoint (with ``--checkpoint-dir``); one
  line says where it stopped and the command that resumes it.
"""

from __future__ import annotations

import os
import sys
import warnings

from jaxbp.cli import explain, gradcheck, parsing, sample, train
from jaxbp.cli.errors import Diverged, UsageError, one_line
from jaxbp.compilation import enable_compilation_cache

__all__ = ["COMMANDS", "Diverged", "UsageError", "build_parser", "command", "main"]

#: name -> the command's module (``add_parser``, ``run``).
COMMANDS = {
    "train": train,
    "gradcheck": gradcheck,
    "explain": explain,
    "sample": sample,
}


def build_parser():
    """The ``jaxbp`` parser with every command's subparser."""
    parser = parsing.OneLineParser(
        prog="jaxbp",
        description="Backpropagation by hand in JAX: train, check gradients.",
    )
    subparsers = parser.add_subparsers(
        dest="command", required=True, parser_class=parsing.OneLineParser
    )
    for command in COMMANDS.values():
        command.add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    """Run the command ``argv`` names; return its exit status (see the module
    docstring). Unexpected exceptions propagate with their traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # as typed: for the resume command of an interrupted run
    enable_compilation_cache()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
            return COMMANDS[args.command].run(args)
    except (UsageError, Diverged) as error:
        print(f"jaxbp {args.command}: error: {one_line(str(error))}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print(f"jaxbp {args.command}: interrupted", file=sys.stderr)
        return 130


def command() -> None:
    """The ``jaxbp`` program (its console script and ``python -m jaxbp``):
    :func:`main`, then the process ends as soon as its output is flushed.

    When ``main`` returns, everything the command writes is written and
    closed; what Python's teardown of the interpreter would add (freeing
    XLA's compiled programs, matplotlib's objects, every module: a noticeable
    part of a short run) is skipped with ``os._exit``. A process of a
    multi-process job leaves normally, through JAX's shutdown barrier.
    """
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    jax = sys.modules.get("jax")
    if jax is not None and jax.distributed.is_initialized():
        sys.exit(status)
    os._exit(status)


def _one_line_warning(command: str):
    """A ``warnings.showwarning`` printing ``jaxbp COMMAND: warning: ...`` as one line."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"jaxbp {command}: warning: {one_line(str(message))}", file=sys.stderr)

    return show
