"""CoSA's dynamic threshold ("threshold searching", ``methods.md`` §2.3)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor


def fit_gmm_1d(x: Tensor, num_iters: int = 20, eps: float = 1e-6
               ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fit a 3-component 1-D Gaussian mixture with EM.

    Initialised at (min, median, max) with the sample variance and equal
    weights.

    Args:
        x (Tensor): (N, ) samples.
        num_iters (int): EM iterations.

    Returns:
        tuple: means (3, ), variances (3, ), weights (3, ) and the
        responsibilities (N, 3).
    """
    x = x.float().flatten()
    mu = torch.stack([x.min(), x.median(), x.max()])
    var = x.var().clamp(min=eps).expand(3).clone()
    w = x.new_full((3, ), 1 / 3)
    resp = None
    for _ in range(num_iters):
        log_p = -0.5 * ((x[:, None] - mu)**2 / var + torch.log(
            2 * torch.pi * var)) + torch.log(w)
        resp = log_p.softmax(dim=1)
        nk = resp.sum(0) + 1e-10
        mu = (resp * x[:, None]).sum(0) / nk
        var = (resp * (x[:, None] - mu)**2).sum(0) / nk + eps
        w = nk / x.numel()
    return mu, var, w, resp


def gmm_thresholds(x: Tensor, num_iters: int = 20
                   ) -> Tuple[Optional[float], Optional[float]]:
    """(tau_l, tau_h) from a 3-component mixture of CAM maxima.

    tau_l = the largest value assigned to the lowest-mean component, tau_h =
    the smallest value assigned to the highest-mean component; None where a
    component got no sample.
    """
    if x.numel() < 3:
        return None, None
    mu, _, _, resp = fit_gmm_1d(x, num_iters)
    order = mu.argsort()
    assign = resp.argmax(dim=1)
    low = x[assign == order[0]]
    high = x[assign == order[2]]
    return (float(low.max()) if low.numel() else None,
            float(high.min()) if high.numel() else None)


class DynamicThreshold(nn.Module):
    """Queue of CAM maxima and EMA-smoothed GMM thresholds.

    Every :meth:`update` pushes new samples (values > ``min_value``) into a
    queue of the last ``queue_size`` values, fits :func:`gmm_thresholds` and
    moves ``tau <- momentum * tau + (1 - momentum) * tau_new``. The new
    thresholds are averaged over all ranks first, so every rank holds the
    same thresholds. Thresholds and queue are buffers: saved in checkpoints.

    Args:
        low (float), high (float): Initial tau_l, tau_h.
        queue_size (int): Samples kept. Defaults to 100000.
        momentum (float): EMA momentum. Defaults to 0.99.
        min_value (float): Only samples above it are queued.
        enabled (bool): When False, :meth:`update` does nothing and the
            thresholds stay at their initial values.
    """

    def __init__(self,
                 low: float = 0.25,
                 high: float = 0.7,
                 queue_size: int = 100000,
                 momentum: float = 0.99,
                 min_value: float = 0.05,
                 num_iters: int = 20,
                 enabled: bool = True):
        super().__init__()
        if not 0 <= low < high <= 1:
            raise ValueError(f'need 0 <= low < high <= 1, got {low}, {high}')
        self.momentum = momentum
        self.min_value = min_value
        self.num_iters = num_iters
        self.enabled = enabled
        self.register_buffer('low', torch.tensor(float(low)))
        self.register_buffer('high', torch.tensor(float(high)))
        self.register_buffer('queue', torch.zeros(queue_size))
        self.register_buffer('queue_len', torch.zeros((), dtype=torch.long))
        self.register_buffer('queue_ptr', torch.zeros((), dtype=torch.long))

    @property
    def thresholds(self) -> Tuple[float, float]:
        return float(self.low), float(self.high)

    @torch.no_grad()
    def update(self, samples: Tensor) -> Tuple[float, float]:
        """Queue ``samples`` (any shape), refit and smooth.

        Returns the (low, high) thresholds."""
        if not self.enabled:
            return self.thresholds
        x = samples.detach().flatten().float()
        x = x[x > self.min_value].to(self.queue.device)
        n, size = x.numel(), self.queue.numel()
        if n:
            if n >= size:
                self.queue.copy_(x[-size:])
                self.queue_ptr.zero_()
                self.queue_len.fill_(size)
            else:
                idx = (self.queue_ptr +
                       torch.arange(n, device=x.device)) % size
                self.queue[idx] = x
                self.queue_ptr.copy_((self.queue_ptr + n) % size)
                self.queue_len.copy_(torch.clamp(self.queue_len + n, max=size))
        low_new, high_new = gmm_thresholds(
            self.queue[:int(self.queue_len)], self.num_iters)
        new = torch.stack([
            self.low if low_new is None else self.low.new_tensor(low_new),
            self.high if high_new is None else self.high.new_tensor(high_new)
        ])
        if get_world_size() > 1:  # identical thresholds on every rank
            all_reduce(new, op='mean')
        m = self.momentum
        low = m * self.low + (1 - m) * new[0]
        high = m * self.high + (1 - m) * new[1]
        if low < high:
            self.low.copy_(low)
            self.high.copy_(high)
        return self.thresholds
