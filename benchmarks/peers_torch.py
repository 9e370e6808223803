"""PyTorch, eager, as its tutorials train a model.

``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` (weight ``(n_out, n_in)``:
the problem's initial weights copied in transposed), ``F.cross_entropy``,
``torch.optim.Adam`` (its defaults: β 0.9/0.999, ε 1e-8, as optax's), a
Python loop of ``zero_grad``, ``backward``, ``step`` fed NumPy batches (as a
data loader feeds them), on CUDA when it is available (else the CPU, with as
many threads as this process may use, like XLA, unless ``OMP_NUM_THREADS``
says otherwise). Calls end with the device synchronized, so their wall time
is the work's.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def device() -> torch.device:
    """CUDA when available, else the CPU, with one thread per usable core
    unless ``OMP_NUM_THREADS`` sets PyTorch's thread count."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        torch.set_num_threads(cores or os.cpu_count() or 1)
    return torch.device("cpu")


def synchronize(where: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously)."""
    if where.type == "cuda":
        torch.cuda.synchronize(where)


def mlp(weights, where: torch.device) -> nn.Sequential:
    """Linear layers with ReLU between them, initialised to ``weights``."""
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(weights):
        linear = nn.Linear(*w.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(w.T, np.float32)))
            linear.bias.copy_(torch.from_numpy(np.array(b, np.float32)))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(where)


class Trainer:
    def __init__(self, problem):
        self.device = device()
        self.model = mlp(problem.weights, self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=problem.learning_rate
        )
        self.x, self.y = problem.x_train, problem.y_train.astype(np.int64)

    def epoch(self, indices) -> np.ndarray:
        """One step per row of ``indices``; the steps' losses."""
        losses = []
        for i in np.asarray(indices):
            xb = torch.from_numpy(self.x[i]).to(self.device)
            yb = torch.from_numpy(self.y[i]).to(self.device)
            loss = F.cross_entropy(self.model(xb), yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.detach())
        return torch.stack(losses).cpu().numpy()

    def accuracy(self, x, y) -> float:
        with torch.no_grad():
            logits = self.model(torch.from_numpy(np.asarray(x)).to(self.device))
        return float(np.mean(logits.argmax(-1).cpu().numpy() == y))


def make_trainer(problem) -> Trainer:
    return Trainer(problem)


def gradient_call(weights, x, y):
    """A call of loss and ``torch.autograd.grad`` for every parameter (not the
    inputs): ``(loss, grads)``, the device synchronized."""
    where = device()
    model = mlp(weights, where)
    params = list(model.parameters())
    xb = torch.from_numpy(np.array(x, np.float32)).to(where)
    yb = torch.from_numpy(np.array(y, np.int64)).to(where)

    def call():
        loss = F.cross_entropy(model(xb), yb)
        grads = torch.autograd.grad(loss, params)
        synchronize(where)
        return loss.detach(), grads

    return call


def version() -> str:
    return torch.__version__
