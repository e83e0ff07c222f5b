import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_wsss.models.pseudo_labels import (DynamicThreshold, fit_gmm_1d,
                                             gmm_thresholds, raw_weights,
                                             seg_pseudo_label)


def _mixture(n=30000, seed=0):
    g = torch.Generator().manual_seed(seed)
    comps = [(0.15, 0.04, 0.5), (0.5, 0.06, 0.2), (0.88, 0.04, 0.3)]
    xs = [m + s * torch.randn(int(n * w), generator=g) for m, s, w in comps]
    return torch.cat(xs), comps


def _bayes_boundary(a, b):
    """Where the weighted densities of components a and b are equal."""
    grid = np.linspace(a[0], b[0], 20001)

    def pdf(c):
        return c[2] / c[1] * np.exp(-0.5 * ((grid - c[0]) / c[1])**2)

    return grid[np.argmin(np.abs(np.log(pdf(a)) - np.log(pdf(b))))]


def test_gmm_recovers_known_boundaries():
    x, comps = _mixture()
    mu, var, w, _ = fit_gmm_1d(x)
    order = mu.argsort()
    for (m, s, wt), i in zip(comps, order.tolist()):
        assert abs(mu[i] - m) < 0.01
        assert abs(var[i].sqrt() - s) < 0.01
        assert abs(w[i] - wt) < 0.02
    low, high = gmm_thresholds(x)
    assert abs(low - _bayes_boundary(comps[0], comps[1])) < 0.02
    assert abs(high - _bayes_boundary(comps[1], comps[2])) < 0.02


def test_dynamic_threshold_ema_and_queue():
    x, comps = _mixture()
    dt = DynamicThreshold(low=0.25, high=0.7, queue_size=50000, momentum=0.9)
    target_low, target_high = gmm_thresholds(x)
    lo, hi = dt.update(x)
    # one EMA step from the initial values towards the GMM boundaries
    assert math.isclose(lo, 0.9 * 0.25 + 0.1 * target_low, abs_tol=1e-4)
    assert math.isclose(hi, 0.9 * 0.7 + 0.1 * target_high, abs_tol=1e-4)
    for _ in range(100):
        lo, hi = dt.update(x[:10])  # small pushes: the queue still holds x
    assert abs(lo - target_low) < 0.01 and abs(hi - target_high) < 0.01
    expected = int((x > 0.05).sum()) + 100 * int((x[:10] > 0.05).sum())
    assert int(dt.queue_len) == min(50000, expected)
    # values <= min_value are never queued
    before = int(dt.queue_len)
    dt.update(torch.full((100, ), 0.01))
    assert int(dt.queue_len) == before
    off = DynamicThreshold(enabled=False)
    assert off.update(x) == pytest.approx((0.25, 0.7))
    with pytest.raises(ValueError):
        DynamicThreshold(low=0.8, high=0.7)
    # one fixed threshold: only when the thresholds do not move
    one = DynamicThreshold(low=0.2, high=0.2, enabled=False)
    assert one.update(x) == pytest.approx((0.2, 0.2))
    with pytest.raises(ValueError, match='only with enabled=False'):
        DynamicThreshold(low=0.2, high=0.2)


def test_dynamic_threshold_state_in_state_dict():
    dt = DynamicThreshold(queue_size=10)
    assert {'low', 'high', 'queue', 'queue_len', 'queue_ptr', 'hist',
            'gmm'} <= set(dt.state_dict())
    # a checkpoint from before the histogram: rebuilt from its queue
    dt.update(torch.tensor([0.1, 0.3, 0.3, 0.9, 0.95]))
    old = {k: v for k, v in dt.state_dict().items()
           if k not in ('hist', 'gmm')}
    fresh = DynamicThreshold(queue_size=10)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.hist, dt.hist) and int(fresh.hist.sum()) == 5


def _mixtures():
    """The unit-test mixture, overlapping components, skewed weights."""
    return {
        'unit': [(0.15, 0.04, 0.5), (0.5, 0.06, 0.2), (0.88, 0.04, 0.3)],
        'overlapping': [(0.3, 0.1, 0.3), (0.5, 0.1, 0.4), (0.75, 0.1, 0.3)],
        'skewed': [(0.2, 0.05, 0.8), (0.55, 0.08, 0.05), (0.9, 0.03, 0.15)],
        'skewed_high': [(0.1, 0.03, 0.05), (0.45, 0.12, 0.15),
                        (0.8, 0.06, 0.8)],
    }


def _draw(comps, n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([m + s * torch.randn(int(n * w), generator=g)
                   for m, s, w in comps]).clamp(0, 1)
    return x[torch.randperm(x.numel(), generator=g)]


@pytest.mark.parametrize('name', list(_mixtures()))
def test_histogram_thresholds_equal_the_sample_fit(name):
    """The constant-cost histogram fit gives the raw thresholds of the
    full-sample fit (fit_gmm_1d, 20 EM iterations) within 0.005 -- on the
    whole set and on the sliding window after chunked pushes (evictions)."""
    for seed in (0, 1):
        x = _draw(_mixtures()[name], 30000, seed)
        ref = gmm_thresholds(x[x > 0.05])
        dt = DynamicThreshold(queue_size=50000, momentum=0.0)
        assert dt.update(x) == pytest.approx(ref, abs=0.005)
        win = DynamicThreshold(queue_size=12000, momentum=0.0)
        for chunk in x.split(2500):
            got = win.update(chunk)
        queued = win.queue[:int(win.queue_len)]
        assert int(win.queue_len) == 12000
        # the sliding histogram is exactly the histogram of the queue
        assert torch.equal(win.hist, torch.bincount(
            win._bin(queued), minlength=win.hist.numel()))
        assert got == pytest.approx(gmm_thresholds(queued), abs=0.005)
    # the exact path is still there
    exact = DynamicThreshold(queue_size=50000, momentum=0.0, fit='samples')
    assert exact.update(x) == pytest.approx(gmm_thresholds(x[x > 0.05]))


def _two_rank_worker(rank, port, out):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        x = _draw(_mixtures()['unit'], 20000, seed=3)
        mine = x[rank::2]  # each rank sees half the samples
        dt = DynamicThreshold(queue_size=20000, momentum=0.0)
        out[rank] = dt.update(mine)
    finally:
        dist.destroy_process_group()


def test_histogram_thresholds_are_global_across_two_ranks():
    """Two processes, each with its own half of the samples: both hold the
    same thresholds, those of one process holding all the samples."""
    import torch.multiprocessing as tmp

    from .conftest import free_port
    with tmp.Manager() as manager:
        out = manager.dict()
        tmp.spawn(_two_rank_worker, args=(free_port(), out), nprocs=2)
        got = dict(out)
    x = _draw(_mixtures()['unit'], 20000, seed=3)
    single = DynamicThreshold(queue_size=40000, momentum=0.0).update(x)
    assert got[0] == got[1] == pytest.approx(single, abs=1e-6)
    # and they are not what either half alone gives
    half = DynamicThreshold(queue_size=20000, momentum=0.0).update(x[0::2])
    assert half != single


def _raw_pixel(values, labels, low=0.25, high=0.7):
    cam = torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)
    lab, w = raw_weights(cam, torch.tensor([labels], dtype=torch.float32),
                         low, high)
    return int(lab), float(w)


def test_raw_weights_spec_examples():
    # methods.md §2.4: max 0.95 others 0 -> ~0.95; 0.5 in the band -> ~0.50;
    # two classes at 0.8 -> ~0.46
    lab, w = _raw_pixel([0.95, 0.0], [1, 0])
    assert lab == 1 and abs(w - 0.952) < 0.002
    lab, w = _raw_pixel([0.5, 0.0], [1, 0])
    assert lab == 1 and abs(w - 0.504) < 0.002  # uncertain band: not ignored
    lab, w = _raw_pixel([0.8, 0.8, 0.3], [1, 1, 0])
    assert lab in (1, 2) and abs(w - 0.461) < 0.002
    lab, _ = _raw_pixel([0.1, 0.0], [1, 0])
    assert lab == 0


def test_raw_weights_one_hot_and_uniform():
    k = 4
    # one-hot q (a class far above the background score): w = 1
    _, w = _raw_pixel([50.0, 0, 0, 0], [1, 1, 1, 1])
    assert abs(w - 1.0) < 1e-6
    # uniform q over background + all K classes: w = (K+1)^-beta
    b = (0.25 + 0.7) / 2
    cam = torch.full((1, k, 2, 2), b)
    for beta in (1.0, 2.0):
        _, w = raw_weights(cam, torch.ones(1, k), 0.25, 0.7, beta=beta)
        assert torch.allclose(w, torch.full_like(w, (k + 1)**-beta))
    # absent classes do not count: uniform over bg + 2 present = 3^-1
    _, w = raw_weights(cam, torch.tensor([[1.0, 1.0, 0.0, 0.0]]), 0.25, 0.7)
    assert torch.allclose(w, torch.full_like(w, 1 / 3))


def test_seg_pseudo_label_temperature_and_masking():
    logits = torch.tensor([0.0, 0.02, 5.0, 0.01]).view(1, 4, 1, 1)
    labels = torch.tensor([[1.0, 0.0, 1.0]])  # class 2 (logit 5) absent
    p = seg_pseudo_label(logits, labels, temperature=0.01)
    # softmax([0, 2, -inf, 1]) after dividing by T
    ref = torch.softmax(torch.tensor([0.0, 2.0, 1.0]), 0)
    assert torch.allclose(p[0, [0, 1, 3], 0, 0], ref, atol=1e-6)
    assert p[0, 2].item() == 0.0
    soft = seg_pseudo_label(logits, labels, temperature=1.0)
    assert soft.max() < p.max()  # lower T is sharper


def test_s2c_loss_hand_worked():
    loss = MODELS.build(dict(type='SegToCAMLoss', loss_weight=1.0))
    cam = torch.tensor([[[[2.0, -1.0]]], [[[0.5, 3.0]]]]).view(1, 2, 1, 2)
    q = torch.tensor([[[[1.0, 0.0]]], [[[0.5, 1.0]]]]).view(1, 2, 1, 2)

    def mlsm(x, y):
        return -(y * F.logsigmoid(x) + (1 - y) * F.logsigmoid(-x))

    x = cam.relu()
    per_token = [(mlsm(x[0, 0, 0, j], q[0, 0, 0, j]) +
                  mlsm(x[0, 1, 0, j], q[0, 1, 0, j])) / 2 for j in range(2)]
    assert torch.isclose(loss(cam, q), sum(per_token) / 2)
    with pytest.raises(ValueError):
        loss(cam, q[..., :1])


def _csc_inputs(separated: bool):
    torch.manual_seed(0)
    c, h, w = 8, 4, 4
    fg_dir = F.one_hot(torch.tensor(0), c).float()
    bg_dir = F.one_hot(torch.tensor(1), c).float()
    feats = torch.zeros(1, c, h, w)
    spl = torch.zeros(1, h, w, dtype=torch.long)
    spl[0, :2] = 1  # class 0 on the top half
    feats[0, :, :2] = fg_dir[:, None, None]
    feats[0, :, 2:] = (-fg_dir if separated else bg_dir)[:, None, None]
    if not separated:  # background tokens look like the object
        feats[0, :, 2:] = (0.6 * fg_dir + 0.4 * bg_dir)[:, None, None]
    cam = torch.zeros(1, 1, h, w)
    cam[0, 0] = 0.9  # the CAM of class 0 also fires on the background
    return feats, spl, cam


def test_csc_zero_when_separated_positive_otherwise():
    loss = MODELS.build(dict(type='ContrastiveSeparationLoss',
                             loss_weight=1.0, temperature=0.1))
    labels = torch.tensor([[1.0]])
    sep = loss(*_csc_inputs(True), labels, active_thr=0.25)
    # opposite prototypes: log(1 + e^((-1 - 1) / 0.1)) = 2e-9 per token,
    # which is 0 in float32
    assert sep.item() == pytest.approx(math.log1p(math.exp(-20)), abs=1e-8)
    mixed_feats, spl, cam = _csc_inputs(False)
    mixed_feats.requires_grad_(True)
    mixed = loss(mixed_feats, spl, cam, labels, active_thr=0.25)
    assert mixed.item() > 0.1
    mixed.backward()
    assert mixed_feats.grad.abs().sum() > 0
    # no coexistence (CAM inactive on the background): B_c empty -> exactly 0
    feats, spl, cam = _csc_inputs(False)
    cam[0, 0, 2:] = 0.1
    assert loss(feats, spl, cam, labels, active_thr=0.25).item() == 0.0
    # hand value: fg tokens at cos(p,own)=1, cos(p,other)=u; bg the same
    feats, spl, cam = _csc_inputs(False)
    f = F.normalize(feats, dim=1)
    pos, neg = f[0, :, 0, 0], f[0, :, 3, 3]
    u = float(pos @ neg)
    per = math.log(1 + math.exp((u - 1) / 0.1))
    assert math.isclose(loss(feats, spl, cam, labels, 0.25).item(), per,
                        rel_tol=1e-5)
