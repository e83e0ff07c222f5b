import math

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmseg_wsss.models.losses import balanced_cross_entropy


def test_multilabel_soft_margin_hand_worked():
    loss = MODELS.build(dict(type='MultiLabelSoftMarginLoss'))
    logits = torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([[1.0, 0.0]])
    # class 0: -log sigmoid(0) = log 2; class 1: -log sigmoid(-2)
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert torch.isclose(loss(logits, labels), torch.tensor(expected))
    assert loss.loss_name == 'loss_cls'


def _ce(logits, cls):
    return -F.log_softmax(torch.tensor(logits), 0)[cls].item()


def test_balanced_ce_hand_worked():
    # 1x1x3 image, 2 classes: pixel 0 bg, pixel 1 fg (class 1), pixel 2 fg
    logits = torch.tensor([[[[2.0, 0.0, 1.0]], [[0.0, 1.0, 1.0]]]])
    label = torch.tensor([[[0, 1, 1]]])
    bg = _ce([2.0, 0.0], 0)
    fg = (_ce([0.0, 1.0], 1) + _ce([1.0, 1.0], 1)) / 2
    out = balanced_cross_entropy(logits, label)
    assert math.isclose(out.item(), 0.5 * bg + 0.5 * fg, rel_tol=1e-6)
    # weights: each part becomes sum(w * ce) / sum(w)
    w = torch.tensor([[[1.0, 3.0, 1.0]]])
    fg_w = (3 * _ce([0.0, 1.0], 1) + _ce([1.0, 1.0], 1)) / 4
    out_w = balanced_cross_entropy(logits, label, weight=w)
    assert math.isclose(out_w.item(), 0.5 * bg + 0.5 * fg_w, rel_tol=1e-6)


def test_balanced_ce_never_nan():
    logits = torch.randn(2, 5, 4, 4, requires_grad=True)
    all_ignore = torch.full((2, 4, 4), 255)
    out = balanced_cross_entropy(logits, all_ignore)
    assert out.item() == 0.0 and not torch.isnan(out)
    out.backward()
    assert torch.isfinite(logits.grad).all()
    # only background: the foreground half contributes exactly 0
    only_bg = torch.zeros(2, 4, 4, dtype=torch.long)
    expected = 0.5 * F.cross_entropy(logits, only_bg)
    assert torch.isclose(balanced_cross_entropy(logits, only_bg), expected)
    # zero weights on every pixel: 0, not NaN
    zero_w = balanced_cross_entropy(logits, only_bg,
                                    weight=torch.zeros(2, 4, 4))
    assert zero_w.item() == 0.0


def test_balanced_ce_module_as_loss_decode():
    loss = MODELS.build(
        dict(type='BalancedCrossEntropyLoss', loss_weight=0.1,
             loss_name='loss_seg'))
    logits = torch.randn(1, 3, 4, 4)
    label = torch.randint(0, 3, (1, 1, 4, 4))  # (B, 1, H, W) as heads pass
    ref = 0.1 * balanced_cross_entropy(logits, label[:, 0])
    assert torch.isclose(loss(logits, label), ref)
    assert loss.loss_name == 'loss_seg'
    try:
        loss(logits, label[..., :2])
    except ValueError as e:
        assert 'resize' in str(e)
    else:
        raise AssertionError('size mismatch must raise')
