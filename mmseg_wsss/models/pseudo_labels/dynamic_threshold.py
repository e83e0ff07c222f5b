"""CoSA's dynamic threshold ("threshold searching", ``methods.md`` §2.3)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor


def gmm_log_prob(x: Tensor, mu: Tensor, var: Tensor, w: Tensor) -> Tensor:
    """(N, 3) log of weight x Gaussian density of each sample under each
    component (the E-step's unnormalised log responsibilities)."""
    return -0.5 * ((x[:, None] - mu)**2 / var + torch.log(
        2 * torch.pi * var)) + torch.log(w)


def _em(x: Tensor,
        mu: Tensor,
        var: Tensor,
        w: Tensor,
        num_iters: int,
        eps: float,
        counts: Optional[Tensor] = None):
    """``num_iters`` EM steps of a 1-D mixture from (mu, var, w); every
    sample weighs 1, or ``counts`` (histogram bins at ``x``). Returns the
    parameters and the last E-step's responsibilities (None without a
    step)."""
    total = x.numel() if counts is None else counts.sum()
    resp = None
    for _ in range(num_iters):
        resp = gmm_log_prob(x, mu, var, w).softmax(dim=1)
        r = resp if counts is None else resp * counts[:, None]
        nk = r.sum(0) + 1e-10
        mu = (r * x[:, None]).sum(0) / nk
        var = (r * (x[:, None] - mu)**2).sum(0) / nk + eps
        w = nk / total
    return mu, var, w, resp


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
    return _em(x, mu, var, w, num_iters, eps)


def hist_cold_init(counts: Tensor, centers: Tensor, eps: float = 1e-6
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`fit_gmm_1d`'s start on a histogram: means at the first
    non-empty bin, the median bin and the last non-empty bin; the
    histogram's (unbiased) variance; equal weights."""
    c = counts.double()
    x = centers.double()
    total = c.sum()
    nz = torch.nonzero(c > 0).flatten()
    med = x[torch.searchsorted(c.cumsum(0), total / 2)]
    mean = (c * x).sum() / total
    var = (c * (x - mean)**2).sum() / (total - 1).clamp(min=1)
    mu = torch.stack([x[nz[0]], med, x[nz[-1]]])
    return mu, var.clamp(min=eps).expand(3).clone(), x.new_full((3, ), 1 / 3)


def fit_gmm_hist(counts: Tensor,
                 centers: Tensor,
                 num_iters: int = 20,
                 init: Optional[Tuple[Tensor, Tensor, Tensor]] = None,
                 eps: float = 1e-6) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`fit_gmm_1d` on a histogram: every bin is its centre, weighted
    by its count. The cost depends on the number of bins, not of samples.

    Args:
        counts (Tensor): (B, ) non-negative bin counts (not all 0).
        centers (Tensor): (B, ) bin centres.
        num_iters (int): EM iterations.
        init (tuple, optional): (means, variances, weights) to start from
            (a warm start from the previous fit); default the cold start of
            :func:`fit_gmm_1d` (min, median, max of the non-empty bins, the
            histogram's variance, equal weights).

    Returns:
        tuple: means (3, ), variances (3, ), weights (3, ) and the
        responsibilities (B, 3) of the bins.
    """
    c = counts.double()
    x = centers.double()
    if init is None:
        mu, var, w = hist_cold_init(c, x, eps)
    else:
        mu, var, w = (t.double().clone() for t in init)
        w = w.clamp(min=1e-8)
        var = var.clamp(min=eps)
    mu, var, w, resp = _em(x, mu, var, w, num_iters, eps, counts=c)
    if resp is None:
        resp = x.new_zeros(x.numel(), 3)
    return mu.float(), var.float(), w.float(), resp.float()


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
    queue of the last ``queue_size`` values, fits a 3-component mixture
    (:func:`gmm_thresholds`) and moves ``tau <- momentum * tau +
    (1 - momentum) * tau_new``. Thresholds, queue and fit are buffers: saved
    in checkpoints.

    ``fit='histogram'`` (default) keeps, beside the queue, a fine histogram
    of its values over ``[0, 1]`` in ``bins`` bins (the values are maxima of
    normalised CAMs; values above 1 count in the last bin), updated as a
    sliding window: each push adds the new values' bins and removes those
    of the values it evicts. The histogram is summed over all ranks before
    each fit, so the statistic is global (the last ``queue_size`` samples of
    every rank) and every rank computes the same thresholds from it. EM runs
    on a coarse view of it (``em_bins`` bins, started from the fine
    histogram's min / median / max), and the components are then assigned
    on the fine bins: tau_l / tau_h are the upper / lower edges of the last
    / first non-empty fine bin of the lowest / highest component, within
    1 / ``bins`` (1.5e-5) of the values' own. (Assigning coarse bins is not
    enough: near a boundary the samples are sparse, and one sample on the
    other side of a bin centre moved tau_h by 0.012.) A call costs the same
    at 10 thousand or 1 million queued samples. EM starts cold each time,
    as the sample fit does: 20 iterations from (min, median, max) do not
    converge on skewed mixtures, so a warm start from the previous fit
    (``warm_start``; the fit is kept in the ``gmm`` buffer) lands elsewhere
    -- up to 0.09 away on a seeded skewed mixture, where the cold histogram
    fit stays within 0.002 of the sample fit.

    ``fit='samples'`` is the earlier exact path (kept as the reference):
    EM over every queued value, cold-started, each rank on its own queue,
    thresholds averaged over ranks; its cost grows with the queue.

    Args:
        low (float), high (float): Initial tau_l, tau_h.
        queue_size (int): Samples kept (per rank). Defaults to 100000.
        momentum (float): EMA momentum. Defaults to 0.99.
        min_value (float): Only samples above it are queued.
        num_iters (int): EM iterations per fit. Defaults to 20.
        fit (str): ``'histogram'`` (default) or ``'samples'``.
        bins (int): Fine histogram bins over [0, 1]. Defaults to 65536.
        em_bins (int): Bins EM runs on (divides ``bins``). Defaults to 1024.
        warm_start (bool): Start EM from the previous fit. Default False.
        enabled (bool): When False, :meth:`update` does nothing and the
            thresholds stay at their initial values (which may then be
            equal: one threshold).
    """

    def __init__(self,
                 low: float = 0.25,
                 high: float = 0.7,
                 queue_size: int = 100000,
                 momentum: float = 0.99,
                 min_value: float = 0.05,
                 num_iters: int = 20,
                 fit: str = 'histogram',
                 bins: int = 65536,
                 em_bins: int = 1024,
                 warm_start: bool = False,
                 enabled: bool = True):
        super().__init__()
        fixed_one = not enabled and 0 <= low == high <= 1
        if not (0 <= low < high <= 1 or fixed_one):
            raise ValueError(
                f'need 0 <= low < high <= 1 (train_cfg.low_thr / high_thr, '
                f'where the dynamic thresholds start), got {low}, {high}; '
                'one threshold (low == high) only with enabled=False')
        if fit not in ('histogram', 'samples'):
            raise ValueError(f"fit must be 'histogram' or 'samples', got "
                             f'{fit!r}')
        if bins % em_bins:
            raise ValueError(f'em_bins ({em_bins}) must divide bins ({bins})')
        self.em_bins = em_bins
        self.momentum = momentum
        self.min_value = min_value
        self.num_iters = num_iters
        self.fit = fit
        self.warm_start = warm_start
        self.enabled = enabled
        self.register_buffer('low', torch.tensor(float(low)))
        self.register_buffer('high', torch.tensor(float(high)))
        self.register_buffer('queue', torch.zeros(queue_size))
        self.register_buffer('queue_len', torch.zeros((), dtype=torch.long))
        self.register_buffer('queue_ptr', torch.zeros((), dtype=torch.long))
        # this rank's histogram of the queue and the last fit (means,
        # variances, weights; all 0 = no fit yet)
        self.register_buffer('hist', torch.zeros(bins, dtype=torch.long))
        self.register_buffer('gmm', torch.zeros(3, 3))
        self._register_load_state_dict_pre_hook(self._hist_from_queue)

    @property
    def thresholds(self) -> Tuple[float, float]:
        return float(self.low), float(self.high)

    def _bin(self, x: Tensor) -> Tensor:
        b = self.hist.numel()
        return (x * b).long().clamp_(0, b - 1)

    def _hist_of(self, values: Tensor) -> Tensor:
        return torch.bincount(self._bin(values.to(self.hist.device)),
                              minlength=self.hist.numel())

    def _hist_from_queue(self, state_dict, prefix, *args) -> None:
        """Checkpoints written before the histogram existed hold the queue
        only: rebuild the histogram from it (and start the fit cold)."""
        if prefix + 'queue' in state_dict and \
                prefix + 'hist' not in state_dict:
            q = state_dict[prefix + 'queue']
            n = int(state_dict[prefix + 'queue_len'])
            state_dict[prefix + 'hist'] = self._hist_of(q[:n])
            state_dict[prefix + 'gmm'] = torch.zeros_like(self.gmm)

    def _push(self, x: Tensor) -> None:
        """Queue ``x`` (already filtered), keeping the histogram in step."""
        n, size = x.numel(), self.queue.numel()
        if not n:
            return
        track = self.fit == 'histogram'
        if n >= size:
            self.queue.copy_(x[-size:])
            self.queue_ptr.zero_()
            self.queue_len.fill_(size)
            if track:
                self.hist.copy_(self._hist_of(self.queue))
            return
        idx = (self.queue_ptr + torch.arange(n, device=x.device)) % size
        if track:
            # positions below queue_len hold values that are evicted now
            old = self.queue[idx[idx < self.queue_len]]
            self.hist.index_add_(0, self._bin(old),
                                 torch.full_like(self.hist[:1], -1).expand(
                                     old.numel()))
            self.hist.index_add_(0, self._bin(x),
                                 torch.ones_like(self.hist[:1]).expand(n))
        self.queue[idx] = x
        self.queue_ptr.copy_((self.queue_ptr + n) % size)
        self.queue_len.copy_(torch.clamp(self.queue_len + n, max=size))

    def _fit_histogram(self) -> Tuple[Optional[float], Optional[float]]:
        counts = self.hist.clone()
        if get_world_size() > 1:  # one statistic over every rank's queue
            all_reduce(counts, op='sum')
        if int(counts.sum()) < 3:
            return None, None
        fine = counts.numel()
        c_fine = (torch.arange(fine, device=counts.device,
                               dtype=torch.float64) + 0.5) / fine
        coarse = counts.view(self.em_bins, -1).sum(1)
        c_coarse = c_fine.view(self.em_bins, -1).mean(1)
        if self.warm_start and self.gmm.any():
            init = tuple(self.gmm)
        else:
            init = hist_cold_init(counts, c_fine)
        # fit_gmm_1d assigns the samples in its last E-step, i.e. with the
        # parameters of num_iters - 1 M-steps: the same here, on fine bins
        mu, var, w, _ = fit_gmm_hist(coarse, c_coarse,
                                     max(self.num_iters - 1, 0), init)
        self.gmm.copy_(torch.stack([mu, var, w]))
        assign = gmm_log_prob(c_fine, mu.double(), var.double(),
                              w.double()).argmax(dim=1)
        order = mu.argsort()
        filled = counts > 0
        low = torch.nonzero(filled & (assign == order[0])).flatten()
        high = torch.nonzero(filled & (assign == order[2])).flatten()
        return (float(low[-1] + 1) / fine if low.numel() else None,
                float(high[0]) / fine if high.numel() else None)

    @torch.no_grad()
    def update(self, samples: Tensor) -> Tuple[float, float]:
        """Queue ``samples`` (any shape), refit and smooth.

        Returns the (low, high) thresholds."""
        if not self.enabled:
            return self.thresholds
        x = samples.detach().flatten().float()
        self._push(x[x > self.min_value].to(self.queue.device))
        if self.fit == 'histogram':
            low_new, high_new = self._fit_histogram()
        else:
            low_new, high_new = gmm_thresholds(
                self.queue[:int(self.queue_len)], self.num_iters)
        new = torch.stack([
            self.low if low_new is None else self.low.new_tensor(low_new),
            self.high if high_new is None else self.high.new_tensor(high_new)
        ])
        if self.fit == 'samples' and get_world_size() > 1:
            all_reduce(new, op='mean')  # identical thresholds on every rank
        m = self.momentum
        low = m * self.low + (1 - m) * new[0]
        high = m * self.high + (1 - m) * new[1]
        if low < high:
            self.low.copy_(low)
            self.high.copy_(high)
        return self.thresholds
