import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS

from mmseg_wsss.datasets import WSSSToyDataset

from .conftest import tiny_cam_model_cfg

TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=(64, 64)),
    dict(type='PackWSSSInputs'),
]
TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs'),
]


def _batch(ds, idx):
    items = [ds[i] for i in idx]
    return dict(inputs=[it['inputs'] for it in items],
                data_samples=[it['data_samples'] for it in items])


def _toy_ds(root, pipeline, test_mode=False):
    return WSSSToyDataset(
        data_root=root,
        ann_file='ImageSets/Segmentation/train.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        test_mode=test_mode,
        pipeline=pipeline)


def _train(model, batch, steps, lr=2e-3):
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=lr))
    history = []
    for _ in range(steps):
        log = model.train_step(batch, wrapper)
        history.append({k: float(v) for k, v in log.items()})
    return history


def test_cam_baseline_loss_falls_before_and_after_warmup(toy_root):
    torch.manual_seed(0)
    ds = _toy_ds(toy_root, TRAIN_PIPELINE)
    batch = _batch(ds, range(8))
    model = MODELS.build(tiny_cam_model_cfg(warmup_iters=5))
    model.init_weights()
    hub = MessageHub.get_current_instance()

    hub.update_info('iter', 0)  # classification-only warm-up
    hist = _train(model, batch, 12)
    assert set(hist[0]) == {'loss', 'loss_cls', 'loss_cls_aux'}
    assert hist[-1]['loss_cls'] < 0.8 * hist[0]['loss_cls']

    hub.update_info('iter', 5)  # warm-up over: the decoder trains on CAM PLs
    hist = _train(model, batch, 15)
    assert {'loss_seg', 'pl_fg_ratio'} <= set(hist[0])
    assert all(torch.isfinite(torch.tensor(h['loss'])) for h in hist)
    assert hist[-1]['loss_seg'] < 0.8 * hist[0]['loss_seg']


def test_predict_outputs_and_flip_consistency(toy_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cam_model_cfg())
    model.init_weights()
    model.eval()
    ds = _toy_ds(toy_root, TEST_PIPELINE, test_mode=True)
    batch = _batch(ds, [0])
    with torch.no_grad():
        out = model.test_step(batch)[0]
    h, w = out.metainfo['ori_shape'][:2]
    assert out.seg_logits.shape == (h, w)
    assert out.seg_logits.data.shape[0] == 5
    assert out.pred_sem_seg.data.shape == (1, h, w)
    cams = out.cams.data
    assert cams.shape == (4, h, w)
    assert cams.min() >= 0 and cams.max() <= 1
    # flip TTA makes the prediction flip-equivariant
    flipped = copy.deepcopy(batch)
    flipped['inputs'][0] = flipped['inputs'][0].flip(-1)
    with torch.no_grad():
        out_f = model.test_step(flipped)[0]
    assert torch.allclose(out_f.seg_logits.data.flip(-1),
                          out.seg_logits.data, atol=1e-4)


def test_cam_only_model_predicts_with_bg_threshold(toy_root):
    model = MODELS.build(tiny_cam_model_cfg(decode_head=False))
    model.init_weights()
    model.eval()
    ds = _toy_ds(toy_root, TEST_PIPELINE, test_mode=True)
    with torch.no_grad():
        out = model.test_step(_batch(ds, [1]))[0]
    logits = out.seg_logits.data
    assert torch.allclose(logits[0], torch.full_like(logits[0], 0.45))
    assert torch.allclose(logits[1:], out.cams.data)


def test_config_errors():
    cfg = tiny_cam_model_cfg()
    cfg['decode_head']['num_classes'] = 4
    with pytest.raises(ValueError, match='background'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='pool'):
        MODELS.build(dict(type='CAMHead', in_channels=8, num_classes=2,
                          pool='median'))


def test_missing_image_labels_raise(toy_root):
    model = MODELS.build(tiny_cam_model_cfg())
    ds = _toy_ds(toy_root, TRAIN_PIPELINE)
    batch = model.data_preprocessor(_batch(ds, [0, 1]), True)
    del batch['data_samples'][1].gt_img_labels
    with pytest.raises(KeyError, match='gt_img_labels'):
        model.loss(batch['inputs'], batch['data_samples'])


def test_cam_head_pooling_modes():
    head = MODELS.build(dict(type='CAMHead', in_channels=2, num_classes=1))
    head.classifier.weight.data = torch.tensor([[[[1.0]], [[-1.0]]]])
    # two tokens: features (3, 0) and (0, -3); scores 3 and 3
    x = torch.tensor([[[[3.0, 0.0]], [[0.0, -3.0]]]])
    assert torch.allclose(head.get_cam(x), torch.tensor([[[[3.0, 3.0]]]]))
    # feature GMP: max per channel = (3, 0) -> 3; score GMP: max(3, 3) = 3
    x2 = torch.tensor([[[[3.0, 0.0]], [[0.0, 2.0]]]])  # scores 3, -2
    assert head(x2).item() == 3.0 - 2.0  # classifier((3, 2)) mixes tokens
    head.pool_scores = True
    assert head(x2).item() == 3.0  # the best token's score
    head.pool, head.pool_scores = 'gap', False
    gap_feat = head(x2).item()
    head.pool_scores = True
    assert gap_feat == head(x2).item() == 0.5  # linear: both orders agree
    topk = MODELS.build(dict(type='CAMHead', in_channels=2, num_classes=1,
                             pool='topk', topk_ratio=0.5))
    topk.classifier.weight.data = head.classifier.weight.data
    x3 = torch.tensor([[[[3.0, 1.0, 0.0, 2.0]], [[0.0] * 4]]])
    assert topk(x3).item() == (3.0 + 2.0) / 2


def test_feature_affinity_refinement_switches(toy_root):
    """test_cfg.feat_refine refines the predicted CAMs over the backbone's
    own tokens (exactly feature_affinity_refine of the unrefined maps);
    train_cfg.feat_refine refines the pseudo-label CAM of the CAM baseline
    and of CoSA; unknown keys are refused."""
    from mmseg_wsss.models.pseudo_labels import (feature_affinity_refine,
                                                 normalize_cam)
    ds = _toy_ds(toy_root, TEST_PIPELINE, test_mode=True)
    cfg = tiny_cam_model_cfg()
    cfg['test_cfg'] = dict(scales=(1.0, ), flip=False)
    plain = MODELS.build(cfg).eval()
    plain.init_weights()
    cfg['test_cfg']['feat_refine'] = dict(beta=2.0, steps=2)
    refined = MODELS.build(cfg).eval()
    refined.load_state_dict(plain.state_dict())
    batch = _batch(ds, [0])
    with torch.no_grad():
        data = plain.data_preprocessor(copy.deepcopy(batch), False)
        raw = plain._aggregate(data['inputs'], (1.0, ), False)['cam']
        from mmseg_wsss.models.pseudo_labels import resize_to_multiple
        tokens = plain.backbone.forward_wsss(
            resize_to_multiple(data['inputs'], 1.0, 8))['tokens']
        want = normalize_cam(feature_affinity_refine(raw, tokens, 2.0, 2))
        got = refined.test_step(copy.deepcopy(batch))[0].cams.data
        base = plain.test_step(copy.deepcopy(batch))[0].cams.data
    torch.testing.assert_close(got, want[0], atol=1e-5, rtol=1e-4)
    assert (got - base).abs().max() > 1e-3
    bad = tiny_cam_model_cfg()
    bad['test_cfg'] = dict(feat_refine=dict(beta=1.0, step=2))
    with pytest.raises(KeyError, match="did you mean 'steps'"):
        MODELS.build(bad)

    train_ds = _toy_ds(toy_root, TRAIN_PIPELINE)
    for kind in ('CAMSegmentor', 'CoSA'):
        tcfg = tiny_cam_model_cfg(warmup_iters=0)
        tcfg['train_cfg']['feat_refine'] = dict(beta=1.0, steps=1,
                                                color_sigma=0.2)
        if kind == 'CoSA':
            tcfg.update(type='CoSA', momentum=0.9)
        model = MODELS.build(tcfg).train()
        seen = []
        orig = model.refine_by_features
        model.refine_by_features = lambda *a, **k: seen.append(1) or orig(
            *a, **k)
        losses = model.loss(**model.data_preprocessor(
            _batch(train_ds, [0, 1]), True))
        assert seen == [1], kind
        # the pseudo-label losses ran: the decoder's (baseline), CAM-to-seg
        key = 'loss_c2s' if kind == 'CoSA' else 'loss_seg'
        assert torch.isfinite(losses[key]), kind


def test_cam_from_forward_gives_the_same_pseudo_label_cam(toy_root):
    """train_cfg.cam_from_forward takes the pseudo-label CAM from the
    training forward's tokens: the same maps as the separate no-grad pass
    (single scale, no flip, no drop-path), one backbone forward fewer; any
    other scale/flip setting is refused at build time."""
    cfg = tiny_cam_model_cfg(warmup_iters=0)
    cfg['train_cfg'].update(cam_scales=(1.0, ), cam_flip=False)
    model = MODELS.build(cfg).train()
    model.init_weights()
    ds = _toy_ds(toy_root, TRAIN_PIPELINE)
    data = model.data_preprocessor(_batch(ds, [0, 1]), True)
    feats = model.online_forward(data['inputs'])
    calls, orig = [], model.backbone.forward_wsss
    model.backbone.forward_wsss = lambda x: calls.append(1) or orig(x)
    plain = model.multi_scale_cam(data['inputs'])
    reused = model.multi_scale_cam(data['inputs'], feats['tokens'])
    model.backbone.forward_wsss = orig
    assert len(calls) == 1  # only the plain pass ran the backbone
    torch.testing.assert_close(reused, plain, atol=1e-5, rtol=1e-5)
    cfg['train_cfg']['cam_from_forward'] = True
    MODELS.build(cfg)  # valid
    cfg['train_cfg']['cam_flip'] = True
    with pytest.raises(ValueError, match='cam_from_forward.*cam_flip=False'):
        MODELS.build(cfg)


def test_cosa_feat_refine_reuses_the_assignment_nets_scale1_tokens(
        toy_root):
    """CoSA's pseudo-label refinement takes the AN's tokens of the weak view
    from its own scale-1 pass (the first half of the flip batch): no extra
    AN backbone pass, the same tokens as a separate forward would give."""
    cfg = tiny_cam_model_cfg(warmup_iters=0)
    cfg.update(type='CoSA', momentum=0.9)
    cfg['train_cfg'].update(cam_scales=(1.0, 0.5), cam_flip=True,
                            feat_refine=dict(beta=1.0, steps=1))
    model = MODELS.build(cfg).train()
    data = model.data_preprocessor(
        _batch(_toy_ds(toy_root, TRAIN_PIPELINE), [0, 1]), True)
    an_backbone = model.assignment_net['backbone']
    calls, orig = [], an_backbone.forward_wsss
    an_backbone.forward_wsss = lambda x: calls.append(x.shape) or orig(x)
    used, refine = [], model.refine_by_features
    model.refine_by_features = lambda *a, **k: used.append(k['feats']) or \
        refine(*a, **k)
    model.loss(data['inputs'], data['data_samples'])
    an_backbone.forward_wsss = orig
    b, _, h, w = data['inputs'].shape
    assert len(calls) == 2  # one pass per scale (flip batched), no third
    assert calls[0] == (2 * b, 3, h, w)
    with torch.no_grad():
        want = orig(data['inputs'])['tokens']
    torch.testing.assert_close(used[0], want, atol=1e-5, rtol=1e-5)
