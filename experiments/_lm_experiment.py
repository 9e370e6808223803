"""The frame the two language-model experiments (``char_rnn``,
``vanishing_through_time``) share around their measurements: training a model
with the settings of the experiment's config, and writing its results.

A config (the script's ``config(quick)``) names the training settings
``learning_rate`` (Adam's), ``clip_norm`` (global-norm clipping), ``steps``,
``batch_size``, ``block_size``, ``eval_interval`` and ``eval_batches``; the
script adds its own entries.
"""

from __future__ import annotations

import _common
import _lm_training as lm

from jaxbp import optim

MACHINE = "2 CPU cores shared with other jobs (loaded): seconds are indicative"
SETTINGS = ("steps", "batch_size", "block_size", "eval_interval", "eval_batches")


def train(model, corpus, cfg, seed=0):
    """``lm.train_language_model`` with the config's settings, from ``seed``:
    (initial params, trained params, history with step 0 first)."""
    return lm.train_language_model(
        model,
        corpus,
        seed=seed,
        optimizer=optim.adam(cfg["learning_rate"]),
        clip_norm=cfg["clip_norm"],
        **{name: cfg[name] for name in SETTINGS},
    )


def write_outputs(args, cfg, results, *, about, headline, seconds, plot) -> dict:
    """Write ``DIR/NAME.json``, {"setup": the config, ``about`` and ``MACHINE``;
    "headline"; every entry of ``results``; "seconds"}, and ``DIR/NAME.png`` by
    ``plot(results, cfg, path)``; return the JSON's dict."""
    out = {
        "setup": {**cfg, **about, "machine": MACHINE},
        "headline": headline,
        **results,
        "seconds": seconds,
    }
    _common.write_json(args, out)
    plot(results, cfg, _common.figure_path(args))
    return out
