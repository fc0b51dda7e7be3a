"""Elastic weight consolidation (Kirkpatrick et al., 2017), the baseline."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from lavaplast.core import check_nonnegative


class EWC:
    """Quadratic penalty that anchors parameters important to earlier tasks.

    After each task, :meth:`consolidate` estimates the diagonal Fisher
    information of the weight matrices (parameters with two or more
    dimensions; for a BNN these are the hidden weights) and stores the current
    values as anchors. :meth:`penalty` returns
    ``lam/2 * sum_tasks sum_i F_i (theta_i - theta*_i)^2``, to be added to the loss.

    The Fisher is estimated from squared mini-batch gradients of the
    cross-entropy of the true labels, times the batch size: with batch-statistic
    BatchNorm a per-sample gradient is not defined, and ``B * E[g_batch^2]``
    estimates the per-sample ``E[g^2]`` when gradients are weakly correlated.
    """

    def __init__(self, model: nn.Module, lam: float = 5e3):
        self.model = model
        self.lam = check_nonnegative("EWC: lam", lam)
        self.params = {n: p for n, p in model.named_parameters() if p.dim() > 1}
        self.tasks: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def consolidate(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Estimate the Fisher on ``batches`` of (inputs, labels) and anchor the weights."""
        fisher = {n: torch.zeros_like(p) for n, p in self.params.items()}
        was_training = self.model.training
        self.model.train()
        n_batches = 0
        for x, y in batches:
            self.model.zero_grad(set_to_none=True)
            F.cross_entropy(self.model(x), y).backward()
            for n, p in self.params.items():
                if p.grad is not None:
                    fisher[n] += p.grad.detach() ** 2 * x.shape[0]
            n_batches += 1
        self.model.zero_grad(set_to_none=True)
        self.model.train(was_training)
        if n_batches == 0:
            raise ValueError("EWC.consolidate needs at least one batch")
        fisher = {n: f / n_batches for n, f in fisher.items()}
        anchors = {n: p.detach().clone() for n, p in self.params.items()}
        self.tasks.append((fisher, anchors))

    def penalty(self) -> torch.Tensor:
        """The EWC loss term (0 before the first consolidation)."""
        device = next(iter(self.params.values())).device if self.params else None
        total = torch.zeros((), device=device)
        for fisher, anchors in self.tasks:
            for n, p in self.params.items():
                total = total + (fisher[n] * (p - anchors[n]) ** 2).sum()
        return 0.5 * self.lam * total

    def state_dict(self) -> dict:
        return {"lam": self.lam, "tasks": self.tasks}

    def load_state_dict(self, state: dict) -> None:
        self.lam = float(state["lam"])
        # Onto the parameters' device: a checkpoint is loaded on the CPU.
        self.tasks = [tuple({n: t.to(self.params[n].device) for n, t in part.items()} for part in task)
                      for task in state["tasks"]]
