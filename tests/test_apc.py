"""APC: adaptive-K pooling, patch contrast, label merge, HV-BiLSTM, the
segmentor."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from mmseg_wsss.models.heads import AdaptiveKPooling, HVBiLSTM
from mmseg_wsss.models.losses import PatchContrastiveLoss
from mmseg_wsss.models.pseudo_labels import label_merge

from .conftest import (REPO, TINY_PREPROCESSOR, TINY_VIT,
                       count_backbone_calls)
from .test_segmentors import TRAIN_PIPELINE, _batch, _toy_ds, _train

# one image, one class, 7 patches: (B=1, N=7, C=1)
SCORES = torch.tensor([0.5, 0.9, 0.1, 0.75, 0.69, 0.85, 0.4])[None, :, None]


def test_akp_special_cases():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(3, 50, 5, generator=g)
    torch.testing.assert_close(
        AdaptiveKPooling(delta=0.0)(s), s.max(dim=1)[0])
    top6 = s.topk(6, dim=1)[0].mean(dim=1)
    torch.testing.assert_close(AdaptiveKPooling(delta=1.0)(s), top6)
    torch.testing.assert_close(AdaptiveKPooling(mode='topk')(s), top6)
    torch.testing.assert_close(AdaptiveKPooling(mode='max')(s),
                               s.max(dim=1)[0])
    torch.testing.assert_close(AdaptiveKPooling(mode='avg')(s), s.mean(1))
    # fewer patches than k_max
    torch.testing.assert_close(AdaptiveKPooling(delta=1.0)(s[:, :4]),
                               s[:, :4].mean(1))


def test_akp_picks_k_on_a_hand_made_vector():
    # sorted: 0.9 0.85 0.75 0.69 0.5 0.4; 0.9 - 0.69 = 0.21 > 0.2 -> K = 3
    akp = AdaptiveKPooling(k_max=6, delta=0.2)
    assert akp.selected_k(SCORES).item() == 3
    assert akp(SCORES).item() == pytest.approx((0.9 + 0.85 + 0.75) / 3)
    assert AdaptiveKPooling(delta=0.25).selected_k(SCORES).item() == 4
    # ratio criterion: s_k >= 0.8 * 0.9 = 0.72 -> 0.9, 0.85, 0.75
    ratio = AdaptiveKPooling(criterion='ratio', rho=0.8)
    assert ratio.selected_k(SCORES).item() == 3
    with pytest.raises(ValueError):
        AdaptiveKPooling(mode='median')


def test_akp_gradient_reaches_only_the_selected_patches():
    s = SCORES.clone().requires_grad_(True)
    AdaptiveKPooling(delta=0.2)(s).sum().backward()
    grad = s.grad[0, :, 0]
    expect = torch.zeros(7)
    expect[[1, 3, 5]] = 1 / 3  # patches 0.9, 0.75, 0.85
    torch.testing.assert_close(grad, expect)


def test_pcl_on_a_hand_made_embedding_set():
    # 4 patches on a 2x2 grid, 2D embeddings: p0 = p1 = (1, 0), p2 = (0, 1),
    # p3 = (-1, 0). Class 1 is confident on p0, p1; background on p2, p3.
    emb = torch.tensor([[1., 0], [1, 0], [0, 1], [-1, 0]]).t().reshape(
        1, 2, 2, 2)
    fg = torch.tensor([0.9, 0.95, 0.1, 0.05])
    probs = torch.stack([1 - fg, fg]).reshape(1, 2, 2, 2)
    labels = torch.tensor([[1., 1.]])
    # class 1: H={0,1} (S=1 -> 0), L={3,2}: S = .5, 0, .5, 0 -> 0.25
    # background: H={2,3} (S=0.5 -> 0.5), L={1,0}: S = .5,.5,0,0 -> 0.25
    # mean over the two classes: (0.25 + 0.75) / 2
    loss = PatchContrastiveLoss(loss_weight=1.0)
    assert loss(emb, probs, labels).item() == pytest.approx(0.5)
    # absent classes do not count
    assert loss(emb, probs, torch.tensor([[0., 1.]])).item() == \
        pytest.approx(0.25)
    # no confident patch: zero, finite gradient
    e = emb.clone().requires_grad_(True)
    flat = torch.full_like(probs, 0.5)
    out = loss(e, flat, labels)
    out.backward()
    assert out.item() == 0 and torch.isfinite(e.grad).all()


def test_label_merge_by_hand():
    # K=2, one image with only class 2 present, 1x3 patches
    probs = torch.tensor([[[0.6, 0.2, 0.1]],    # background
                          [[0.1, 0.7, 0.1]],    # class 1 (absent)
                          [[0.3, 0.1, 0.8]]])[None]
    # P' = (bg, 0, c2); scaled by peaks 0.6 and 0.8:
    # bg (1, .333, .167), c2 (.375, .125, 1) -> labels 0, 0, 2
    out = label_merge(probs, torch.tensor([[0., 1.]]))
    assert out.tolist() == [[[0, 0, 2]]]
    # with class 1 present the middle patch is class 1
    out = label_merge(probs, torch.tensor([[1., 1.]]))
    assert out.tolist() == [[[0, 1, 2]]]


def test_hv_bilstm_keeps_the_grid_and_is_direction_aware():
    torch.manual_seed(0)
    lstm = HVBiLSTM(in_channels=8, hidden=4, dropout=0.0).eval()
    x = torch.randn(2, 8, 3, 5)
    y = lstm(x)
    assert y.shape == (2, 8, 3, 5)
    yt = lstm(x.transpose(2, 3))
    assert yt.shape == (2, 8, 5, 3)
    assert not torch.allclose(yt, y.transpose(2, 3), atol=1e-4)
    # rows run their own LSTM: changing one row's content changes the
    # outputs of that row and (through the column LSTM) of that column only
    x2 = x.clone()
    x2[:, :, 1, 2] += 1
    d = (lstm(x2) - y).abs().sum(dim=(0, 1))
    assert d[1].gt(1e-6).all() and d[:, 2].gt(1e-6).all()
    assert d[0, 0] < 1e-6 and d[2, 4] < 1e-6


def tiny_apc_cfg(pooling=dict()):
    vit = dict(copy.deepcopy(TINY_VIT), out_indices=(0, 1, 2))
    return dict(
        type='APC',
        data_preprocessor=copy.deepcopy(TINY_PREPROCESSOR),
        backbone=vit,
        patch_head=dict(
            type='PatchClassifierHead', in_channels=32, num_classes=4,
            refiner=dict(type='HVBiLSTM', hidden=8), pooling=pooling),
        loss_pcl=dict(type='PatchContrastiveLoss', loss_weight=0.02),
        decode_head=dict(
            type='SegformerHead', in_channels=[32, 32, 32],
            in_index=[0, 1, 2], channels=16, num_classes=5,
            norm_cfg=dict(type='BN', requires_grad=True),
            loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True,
                             loss_weight=0.9)),
        test_cfg=dict(scales=(1.0, ), flip=True))


def test_apc_loss_falls_over_real_cpu_steps(toy_root):
    torch.manual_seed(0)
    ds = _toy_ds(toy_root, TRAIN_PIPELINE)
    batch = _batch(ds, range(8))
    model = MODELS.build(tiny_apc_cfg())
    model.init_weights()
    hist = _train(model, batch, 25)
    assert {'loss_cls', 'loss_l2', 'loss_pcl', 'loss_ce',
            'pl_fg_ratio'} <= set(hist[0])
    assert all(torch.isfinite(torch.tensor(h['loss'])) for h in hist)
    assert hist[-1]['loss_cls'] < 0.7 * hist[0]['loss_cls']
    assert hist[-1]['loss'] < 0.8 * hist[0]['loss']


def test_apc_predicts_patch_maps_and_decoder(toy_root):
    from .test_segmentors import TEST_PIPELINE
    ds = _toy_ds(toy_root, TEST_PIPELINE, test_mode=True)
    model = MODELS.build(tiny_apc_cfg()).eval()
    with torch.no_grad():
        out = model.test_step(_batch(ds, [0]))[0]
    h, w = out.ori_shape
    assert out.seg_logits.data.shape == (5, h, w)
    assert out.cams.data.shape == (4, h, w)
    assert out.cams.data.min() >= 0 and out.cams.data.max() <= 1 + 1e-6
    # without a decoder the prediction is the patch classifier's
    cfg = tiny_apc_cfg()
    cfg['decode_head'] = None
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        out = model.test_step(_batch(ds, [0]))[0]
    torch.testing.assert_close(out.seg_logits.data.sum(0),
                               torch.full((h, w), 2.0), atol=1e-4, rtol=0)


def test_apc_pseudo_scores_give_the_label_merged_pseudo_mask():
    """``predict``'s ``pseudo_scores`` argmax-ed over the background and the
    present classes is :func:`label_merge` of the patch softmax -- what the
    decoder trains on and ``PseudoMaskMetric`` reports as ``own_mIoU``."""
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    cfg = tiny_apc_cfg()
    cfg['test_cfg'] = dict(scales=(1.0, ), flip=False)
    model = MODELS.build(cfg).eval()
    probs = (3 * torch.randn(2, 5, 6, 7)).softmax(1)
    labels = torch.tensor([[1., 0, 0, 1], [0, 1, 1, 0]])
    # maps at the input size: no resizing between P and the prediction
    model.forward_maps = lambda x: dict(cam=probs[:, 1:], pseudo=probs,
                                        seg=probs.log())
    samples = [SegDataSample(metainfo=dict(ori_shape=(6, 7)))
               for _ in range(2)]
    outs = model.predict(torch.zeros(2, 3, 6, 7), samples)
    expected = label_merge(probs, labels)
    for out, lab, exp in zip(outs, labels, expected):
        scores = out.pseudo_scores.data
        assert scores.shape == (5, 6, 7)
        torch.testing.assert_close(scores.flatten(1).max(1)[0],
                                   torch.ones(5))
        keep = torch.cat([torch.ones(1), lab]).bool()
        scores[~keep] = -1
        assert torch.equal(scores.argmax(0), exp)


def test_apc_pooling_ablation_switches_from_config():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'apc', 'apc_tiny_toy.py'))
    for mode in ('avg', 'max', 'topk', 'akp'):
        cfg.merge_from_dict({'model.patch_head.pooling.mode': mode})
        model = MODELS.build(cfg.model)
        assert model.patch_head.pooling.mode == mode


def test_par_keeps_refinement_inside_a_colour_region():
    from mmseg_wsss.models.pseudo_labels import par_refine
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(1, 3, 32, 32)
    img[..., 16:] = 200  # a strong vertical colour edge at x = 16
    img += torch.randn(img.shape, generator=g)
    m = torch.zeros(1, 1, 32, 32)
    m[..., 10:22, 18:24] = 1  # a blob in the right region
    out = par_refine(img, m)
    assert out.shape == m.shape
    left, right = out[..., :16].mean(), out[..., 16:].mean()
    assert right > 5 * left, (left, right)
    # spread inside the right region: its far corner now has mass
    assert out[0, 0, 0, 31] > 0.02
    # a uniform map stays uniform (alpha sums to 1 + w2 per step)
    u = par_refine(img, torch.ones(1, 1, 32, 32), num_iter=1)
    torch.testing.assert_close(u, torch.full_like(u, 1.01))
    with pytest.raises(ValueError, match='same size'):
        par_refine(img, m[..., :16])


def test_apc_par_option_refines_the_patch_pseudo_label(toy_root):
    cfg = tiny_apc_cfg()
    cfg['train_cfg'] = dict(par=dict(num_iter=3))
    model = MODELS.build(cfg)
    probs = torch.rand(2, 5, 8, 8).softmax(1)
    labels = torch.tensor([[1., 0, 0, 0], [0, 1, 1, 0]])
    x = torch.randn(2, 3, 64, 64)
    refined = model.patch_pseudo_label(x, probs, labels)
    model.train_cfg['par'] = None
    plain = model.patch_pseudo_label(x, probs, labels)
    assert refined.shape == plain.shape == (2, 64, 64)
    assert (refined != plain).any()
    # only background and present classes
    assert set(refined[0].unique().tolist()) <= {0, 1}
    assert set(refined[1].unique().tolist()) <= {0, 2, 3}


def test_apc_feat_refine_option_propagates_the_patch_scores():
    """train_cfg.feat_refine: the label-merged patch scores (background
    included) are propagated over the token affinity before the argmax.
    Two token groups (left / right halves, orthogonal features): a class
    that wins 5 of the 8 left tokens takes the whole left half (the mean of
    its renormalised scores there is 0.61 against background's 0.39), and
    no absent class appears."""
    from mmseg_wsss.models.pseudo_labels import feature_affinity_refine
    cfg = tiny_apc_cfg()
    cfg['train_cfg'] = dict(feat_refine=dict(beta=1.0, steps=1))
    model = MODELS.build(cfg)
    tokens = torch.zeros(1, 2, 4, 4)
    tokens[:, 0, :, :2] = 1.0  # left half
    tokens[:, 1, :, 2:] = 1.0  # right half
    probs = torch.full((1, 5, 4, 4), 0.05)
    probs[:, 0] = 0.8  # background everywhere ...
    probs[:, 0, :2, :2] = probs[:, 0, 2, 0] = 0.05  # ... but 5 left tokens
    probs[:, 2, :2, :2] = probs[:, 2, 2, 0] = 0.9  # ... are class 1
    probs = probs / probs.sum(1, keepdim=True)
    labels = torch.tensor([[0., 1, 0, 0]])
    x = torch.randn(1, 3, 32, 32)
    got = model.patch_pseudo_label(x, probs, labels, tokens=tokens)
    assert got.shape == (1, 32, 32)
    assert (got[0, :, :16] == 2).all() and (got[0, :, 16:] == 0).all()
    scores = label_merge(probs, labels, True)
    want = feature_affinity_refine(
        scores, tokens, 1.0, 1, present=torch.tensor([[1., 0, 1, 0, 0]]))
    assert torch.equal(got[0, ::8, ::8], want.argmax(1)[0])
    model.train_cfg['feat_refine'] = None  # off: the plain label merge
    plain = model.patch_pseudo_label(x, probs, labels, tokens=tokens)
    assert (plain == 2).sum() == 5 * 8 * 8  # the 5 tokens' pixels


def test_apc_takes_the_acr_regularizer_from_config(toy_root):
    """ACR plugs into APC like into the CAM baseline and CoSA: one config
    entry; only then does the backbone return attention and run a second
    (flipped) forward, and the ACR gradient reaches the first block."""
    ds = _toy_ds(toy_root, TRAIN_PIPELINE)
    batch = _batch(ds, range(2))
    counts = {}
    for name, regs in (('plain', None), ('acr', [dict(type='ACRLoss')])):
        cfg = tiny_apc_cfg()
        cfg['regularizers'] = regs
        model = MODELS.build(cfg)
        counts[name] = count_backbone_calls(model)
        losses = model.loss(**model.data_preprocessor(batch, True))
        if name == 'acr':
            assert losses['loss_acr'].item() > 0
            losses['loss_acr'].backward()
            qkv = model.backbone.blocks[0].attn.qkv.weight.grad
            assert qkv is not None and qkv.abs().sum() > 0
        else:
            assert 'loss_acr' not in losses
    assert counts == {'plain': [False], 'acr': ['mean', 'mean']}
