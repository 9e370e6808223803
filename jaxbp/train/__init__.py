"""Training: a pure train step, one loop over given batches, ``fit`` and ``sweep``.

::

    result = fit(model, (x, y), (x_val, y_val), optimizer=optim.adam(1e-3),
                 batch_size=32, epochs=100, patience=10, checkpoint_dir="ckpt")
    loss, accuracy = evaluate(model, result.params, (x_test, y_test),
                              state=result.state, loss="cross_entropy")

    params, state = init_params(model, seeds=[0, 1, 2])     # fit(seed=s)'s inits
    runs = sweep(model, (x, y), (x_val, y_val), optimizer=optim.adam(1e-3),
                 params=params, state=state, seeds=[0, 1, 2], epochs=50)

**The step** (:func:`make_step`). One step on a mini-batch ``(x_b, y_b)``
with parameters ``θ``::

    L, g   = loss and gradient on the batch   (manual backprop or autodiff)
    L     += ½ λ Σ_W ‖W‖² ;  g_W += λ W       (l2 = λ: coupled L2, weights only,
                                                see jaxbp.regularization)
    u, s   = optimizer.update(g, s, θ)        (chain(clip_by_global_norm(c),
                                                optimizer) with clip_norm c)
    θ      = θ + u

The optimizer is any optax-protocol ``GradientTransformation``: ``jaxbp.optim``'s
or optax's. ``l2`` is the penalty added to the loss (so Adam rescales it like
any gradient); decoupled weight decay is the optimizer's own business
(``optim.adamw(lr, weight_decay=...)``). Clipping acts on the whole gradient,
L2 term included. The model's state (batch norm's running statistics) is
threaded through every step, and every step gets its own PRNG key (dropout).

**One loop** (:func:`run_steps`): a ``lax.scan`` of the step over given batch
indices and keys. :func:`fit` runs it one epoch at a time
(:func:`make_epoch`, the batches of :func:`epoch_batches`); :func:`sweep` runs
it for N models at once under ``vmap``, over a :class:`Schedule` (default: each
seed's :func:`batch_schedule`, the batches of ``fit(seed=s)``). Batches and
keys come from the seed (``jaxbp.train.schedule``): any epoch can be
recomputed, so a resumed run is the same as an uninterrupted one.

**Reported numbers.** ``train_loss`` is the training objective (data loss plus
the L2 penalty) on each batch, taken *before* that step's update, in training
mode (as Keras and PyTorch report it); :func:`fit` records its mean over the
epoch. Validation loss and accuracy are computed in evaluation mode on the
whole validation set (:func:`evaluate`).

**Language models** (:func:`fit_language_model`): next-token training on
random windows of a token stream for a number of steps, in rounds of
``eval_interval`` steps each followed by the validation loss; the same step,
loop, checkpoints and resume as :func:`fit` (``jaxbp.train.rounds``).

**Checkpoints and resume** (:func:`fit` with ``checkpoint_dir``,
``jaxbp.train.resume``): everything a run depends on is saved at epoch
boundaries, atomically, in a background thread; ``resume=True`` continues from
the newest checkpoint, bit-identical to an uninterrupted run.

**Data parallel** (``fit(devices=k)``, ``jaxbp.train.parallel``): every batch
split across ``k`` devices, the same maths up to the order of the sums.
Over several processes (machines): :func:`jaxbp.train.distributed.initialize`
in each first, then the same ``fit``; ``k`` counts the devices of the whole
job, only process 0 writes checkpoints, and a process that dies ends the
others with :class:`JobFailed`.

**Failure.** A non-finite training loss stops :func:`fit` with
:class:`TrainingDiverged` (a ``ValueError``) naming the epoch and the first bad
step, after the last good epoch's checkpoint is on disk. :func:`sweep` never
raises inside its program: a diverging run shows NaN or inf losses.
"""

from jaxbp.train.distributed import JobFailed
from jaxbp.train.evaluate import compile_evaluate, evaluate, metrics, predict
from jaxbp.train.fit import FitResult, fit
from jaxbp.train.history import TrainingDiverged
from jaxbp.train.language import LanguageModelResult, fit_language_model
from jaxbp.train.loop import make_epoch, run_steps
from jaxbp.train.schedule import Schedule, batch_schedule, epoch_batches, train_keys
from jaxbp.train.step import TrainState, make_optimizer, make_step
from jaxbp.train.sweep import Evaluation, SweepResult, init_params, sweep

__all__ = [
    "Evaluation",
    "FitResult",
    "JobFailed",
    "LanguageModelResult",
    "Schedule",
    "SweepResult",
    "TrainState",
    "TrainingDiverged",
    "batch_schedule",
    "compile_evaluate",
    "epoch_batches",
    "evaluate",
    "fit",
    "fit_language_model",
    "init_params",
    "make_epoch",
    "make_optimizer",
    "make_step",
    "metrics",
    "predict",
    "run_steps",
    "sweep",
    "train_keys",
]
