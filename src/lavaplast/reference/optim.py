"""``MetaplasticAdam``: Adam whose steps toward a sign flip are attenuated."""

from __future__ import annotations

import torch

from lavaplast.core import check_adam, metaplastic_adam_step_


class MetaplasticAdam(torch.optim.Optimizer):
    """Adam with synaptic metaplasticity (Laborieux et al., 2021).

    The parameters are the hidden weights. For every parameter with two or
    more dimensions, a step that would shrink ``|W_h|`` is multiplied by
    ``f_meta(meta, W_h) = 1 - tanh^2(meta * |W_h|)``; steps that grow it are
    not. One-dimensional parameters (BatchNorm scale and shift, biases) get
    plain Adam. ``meta`` can be set per parameter group, e.g. one per layer::

        opt = MetaplasticAdam([
            {"params": net.layers[0].parameters(), "meta": 1.35},
            {"params": net.layers[3].parameters(), "meta": 0.5},
        ], lr=0.005)

    The update follows the paper's Adam (``eta_t = lr sqrt(1-b2^t)/(1-b1^t)``,
    ``eps`` added to ``sqrt(v_t)``); with ``meta = 0`` it is plain Adam in that
    form, which differs from ``torch.optim.Adam`` only in where ``eps`` sits.
    Weight decay is added to the gradient (L2, not decoupled).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, meta: float = 0.0):
        defaults = check_adam("MetaplasticAdam: ", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                              meta=meta)
        self._work: dict = {}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group; its settings (its own or the defaults) are validated like the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"MetaplasticAdam: a param group must be a dict, got {type(param_group).__name__}")
        settings = {key: param_group.get(key, value) for key, value in self.defaults.items()}
        who = f"MetaplasticAdam: param group {len(self.param_groups)} "
        param_group.update(check_adam(who, **settings))
        super().add_param_group(param_group)

    def _scratch(self, p: torch.Tensor) -> tuple:
        # Reused buffers: allocating megabyte tensors every step costs as much
        # as the update itself. Not part of the state (nothing to save).
        work = self._work.get(p)
        if work is None or work[0].shape != p.shape or work[0].dtype != p.dtype:
            work = tuple(torch.empty_like(p) for _ in range(3))
            self._work[p] = work
        return work

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimisation step; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("MetaplasticAdam does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] = metaplastic_adam_step_(
                    p,
                    p.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    state["step"],
                    lr=group["lr"],
                    betas=group["betas"],
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                    meta=group["meta"] if p.dim() > 1 else 0.0,
                    work=self._scratch(p),
                )
        return loss
