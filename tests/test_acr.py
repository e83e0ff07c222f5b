"""ACR: flip permutation, attention-consistency loss, the regulariser
plug-in, class-token-gradient (GETAM) localisation."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_wsss.models.losses import ACRLoss, hflip_token_permutation
from mmseg_wsss.models.pseudo_labels import class_token_gradient_map

from .conftest import (REPO, TINY_VIT, count_backbone_calls,
                       tiny_cam_model_cfg)


@pytest.mark.parametrize('grid', [(3, 3), (2, 3), (4, 6), (5, 1)])
def test_flip_permutation_is_an_involution(grid):
    perm = hflip_token_permutation(grid)
    assert sorted(perm.tolist()) == list(range(grid[0] * grid[1]))
    torch.testing.assert_close(perm[perm], torch.arange(len(perm)))


def test_flip_permutation_by_hand_and_matches_a_flipped_grid():
    assert hflip_token_permutation((2, 3)).tolist() == [2, 1, 0, 5, 4, 3]
    x = torch.arange(12.).view(3, 4)
    perm = hflip_token_permutation((3, 4))
    torch.testing.assert_close(x.flip(-1).flatten(), x.flatten()[perm])


def _random_attn(b, n, g):
    return torch.randn(b, n, n, generator=g).softmax(-1)


def _flip_attn(a, grid):
    """Attention of the flipped view when attention is exactly
    flip-equivariant: tokens permuted by Π, class token fixed."""
    perm = torch.cat([torch.zeros(1, dtype=torch.long),
                      hflip_token_permutation(grid) + 1])
    return a[:, perm][:, :, perm]


def test_acr_is_zero_for_equivariant_attention_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    grid = (3, 5)
    attns = [_random_attn(2, 16, g) for _ in range(3)]
    flips = [_flip_attn(a, grid) for a in attns]
    loss = ACRLoss(loss_weight=1.0)
    assert loss(attns, flips, grid).item() < 1e-7
    # unflipped "flip" attention breaks the symmetry
    assert loss(attns, attns, grid).item() > 1e-3
    # the grid must match the attention size
    with pytest.raises(ValueError, match='grid'):
        loss(attns, flips, (4, 4))


def test_acr_hand_value_and_block_choice():
    # 1 block, grid (1, 2): tokens [cls, p0, p1]; flip swaps p0 and p1
    a = torch.tensor([[[0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.1, 0.2, 0.7]]])
    a2 = _flip_attn(a, (1, 2)).clone()
    a2[0, 0, 1] += 0.1  # class-token row entry of p1 in the flipped view
    a2[0, 2, 2] -= 0.4  # patch-patch entry (p1, p1) -> compares to (p0, p0)
    # L_int = mean(|0| , |0.1|) = 0.05 ; L_aff = 0.4 / 4 = 0.1
    loss = ACRLoss(loss_weight=10.0)
    assert loss([a], [a2], (1, 2)).item() == pytest.approx(1.5)
    assert ACRLoss(loss_weight=10.0, affinity=False)(
        [a], [a2], (1, 2)).item() == pytest.approx(0.5)
    # blocks=[1]: only the second block counts
    b = [a, a]
    b2 = [_flip_attn(a, (1, 2)), a2]
    assert ACRLoss(loss_weight=10.0, blocks=[1])(
        b, b2, (1, 2)).item() == pytest.approx(1.5)
    assert ACRLoss(loss_weight=10.0, blocks=[0])(b, b2, (1, 2)).item() == 0


def _vit(pos_zero):
    cfg = dict(copy.deepcopy(TINY_VIT), drop_path_rate=0.0)
    vit = MODELS.build(cfg).eval()
    vit.init_weights()
    with torch.no_grad():
        if pos_zero:
            vit.pos_embed.zero_()
        else:
            vit.pos_embed.normal_(0, 1)
    return vit


def test_acr_on_a_real_vit_zero_when_the_network_is_flip_equivariant():
    """No position embedding + an image constant on each patch: flipping
    the image only permutes the tokens, so attention is exactly
    flip-equivariant (non-square 4x6 grid); a position embedding breaks
    it."""
    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, 4, 6, generator=g)
    img = img.repeat_interleave(8, 2).repeat_interleave(8, 3)  # 32 x 48
    loss = ACRLoss(loss_weight=125.0)
    for pos_zero, check in ((True, lambda v: v < 1e-4),
                            (False, lambda v: v > 1e-2)):
        vit = _vit(pos_zero)
        with torch.no_grad():
            a = vit.forward_wsss(img, with_attn='mean')
            b = vit.forward_wsss(img.flip(-1), with_attn='mean')
        assert a['grid'] == (4, 6)
        value = loss(a['attns'], b['attns'], a['grid']).item()
        assert check(value), (pos_zero, value)


# ------------------------------------------------------------ plug-in
def _batch(n=2, size=(64, 48), strong=False):
    imgs = [torch.randint(0, 255, (3, *size), dtype=torch.uint8)
            for _ in range(n)]
    samples = []
    for i in range(n):
        s = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
        s.gt_img_labels = torch.tensor([1., 0, float(i % 2), 0])
        samples.append(s)
    inputs = [dict(weak=x, strong=x) for x in imgs] if strong else imgs
    return dict(inputs=inputs, data_samples=samples)


def test_regularizer_is_added_and_removed_by_config_alone():
    cfg = tiny_cam_model_cfg(warmup_iters=100)
    plain = MODELS.build(cfg)
    calls = count_backbone_calls(plain)
    losses = plain.loss(**plain.data_preprocessor(_batch(), True))
    assert 'loss_acr' not in losses
    assert calls == [False], 'no attention, no extra forward without ACR'

    cfg['regularizers'] = [dict(type='ACRLoss', loss_weight=125.0)]
    reg = MODELS.build(cfg)
    calls = count_backbone_calls(reg)
    losses = reg.loss(**reg.data_preprocessor(_batch(), True))
    assert calls == ['mean', 'mean'], 'online + flipped forward'
    assert losses['loss_acr'].item() > 0
    losses['loss_acr'].backward()
    assert reg.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_acr_configs_differ_from_their_bases_only_by_the_regularizer():
    for base, acr in (('baseline/cam_tiny_toy.py', 'acr/cam_acr_tiny_toy.py'),
                      ('cosa/cosa_vitb_voc.py', 'acr/cosa_acr_vitb_voc.py'),
                      ('cosa/cosa_dinov2s_coco128.py',
                       'acr/cosa_acr_dinov2s_coco128.py'),
                      ('baseline/cam_dinov2s_coco128.py',
                       'acr/cam_acr_dinov2s_coco128.py')):
        a = Config.fromfile(osp.join(REPO, 'configs', base))
        b = Config.fromfile(osp.join(REPO, 'configs', acr))
        regs = b.model.pop('regularizers')
        assert [r['type'] for r in regs] == ['ACRLoss']
        if 'coco128' in acr:  # ACR's blocks must be trainable there
            assert b.model.backbone.pop('frozen_stages') == 10
            a.model.backbone.pop('frozen_stages')
            # ... at a small learning rate (only the backbone's changes)
            keys = b.optim_wrapper.paramwise_cfg.custom_keys.to_dict()
            assert keys.pop('backbone') == {'lr_mult': 0.01}
            b.optim_wrapper.paramwise_cfg.custom_keys = keys  # the base's
            assert a.optim_wrapper.to_dict() == b.optim_wrapper.to_dict()
        assert a.model.to_dict() == b.model.to_dict(), acr
        # and the regulariser comes off again from the command line
        b.merge_from_dict({'model.regularizers': []})


def test_cosa_with_acr_regularizes_the_online_network():
    from mmseg_wsss.utils import get_current_iter  # noqa: F401
    cfg = tiny_cam_model_cfg(warmup_iters=100)
    cfg.update(type='CoSA', momentum=0.9,
               regularizers=[dict(type='ACRLoss')])
    model = MODELS.build(cfg)
    calls = count_backbone_calls(model)
    losses = model.loss(**model.data_preprocessor(_batch(strong=True), True))
    assert losses['loss_acr'].item() > 0
    assert calls == ['mean', 'mean']


# ------------------------------------------------------------ GETAM
def _token_model(start_block=-2, affinity=False):
    cfg = tiny_cam_model_cfg()
    cfg['token_head'] = dict(type='ClsTokenHead', in_channels=32,
                             num_classes=4)
    cfg['test_cfg'] = dict(scales=(1.0, ), flip=True, localizer='getam',
                           getam=dict(start_block=start_block,
                                      affinity=affinity))
    model = MODELS.build(cfg).eval()
    model.init_weights()
    return model


def test_getam_gradients_reach_only_the_chosen_blocks():
    model = _token_model()
    reached = set()

    def watch(i):
        def hook(module, inp, out):
            if out[1] is not None:
                out[1].register_hook(lambda g: reached.add(i))
        return hook

    for i, blk in enumerate(model.backbone.blocks):
        blk.attn.register_forward_hook(watch(i))
    x = torch.randn(2, 3, 32, 48)
    maps = class_token_gradient_map(model.backbone, model.token_head, x,
                                    start_block=-2)
    assert reached == {1, 2}, 'blocks 1 and 2 of 0..2 only'
    assert maps.shape == (2, 4, 4, 6) and (maps >= 0).all()
    assert not maps.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_getam_equals_a_hand_computed_gradient_map():
    model = _token_model()
    x = torch.randn(1, 3, 32, 32)
    classes = torch.tensor([False, True, False, True])
    maps = class_token_gradient_map(model.backbone, model.token_head, x,
                                    start_block=-1, classes=classes)
    assert maps[:, [0, 2]].abs().sum() == 0
    feats = model.backbone.forward_wsss(x, with_attn='heads')
    a = feats['attns'][-1]
    s = model.token_head(feats['cls_token'])[0, 3]
    (g, ) = torch.autograd.grad(s, [a])
    ref = g.relu().mean(1)[0, 0, 1:].relu().view(4, 4)
    torch.testing.assert_close(maps[0, 3], ref)
    # the old affinity (the gradient block only) behind its option
    ref_aff = (a.detach().mean(1)[0, 1:, 1:] @ ref.flatten()).view(4, 4)
    maps_aff = class_token_gradient_map(model.backbone, model.token_head, x,
                                        start_block=-1, classes=classes,
                                        affinity=True,
                                        affinity_blocks='chosen')
    torch.testing.assert_close(maps_aff[0, 3], ref_aff)


def test_getam_affinity_sums_every_block_like_the_authors_code():
    """Default: the affinity is the head-averaged patch-patch attention
    summed over ALL blocks (ACR_WSSS ``getam``), the gradients still come
    from the blocks >= start_block only. Hand-written with .backward() and
    retained gradients."""
    model = _token_model()
    x = torch.randn(2, 3, 32, 40)
    maps = class_token_gradient_map(model.backbone, model.token_head, x,
                                    start_block=-2, affinity=True)
    assert maps.shape == (2, 4, 4, 5)
    for c in range(4):
        feats = model.backbone.forward_wsss(x, with_attn='heads')
        attns = feats['attns']  # 3 blocks, (B, heads, 21, 21)
        for a in attns:
            a.retain_grad()
        model.token_head(feats['cls_token'])[:, c].sum().backward()
        for b in range(2):
            cam = torch.zeros(20)
            for a in attns[1:]:
                cam += a.grad[b].clamp(min=0).mean(0)[0, 1:]
            aff = torch.zeros(20, 20)
            for a in attns:  # every block
                aff += a.detach()[b].mean(0)[1:, 1:]
            ref = torch.einsum('ij,j->i', aff, cam).clamp(min=0)
            torch.testing.assert_close(maps[b, c].flatten(), ref)
    chosen = class_token_gradient_map(model.backbone, model.token_head, x,
                                      start_block=-2, affinity=True,
                                      affinity_blocks='chosen')
    assert (chosen - maps).abs().max() > 1e-3  # the two really differ
    with pytest.raises(ValueError, match='affinity_blocks'):
        class_token_gradient_map(model.backbone, model.token_head, x,
                                 affinity=True, affinity_blocks='last')


def test_getam_chosen_blocks_option_equals_the_previous_output():
    """``affinity_blocks='chosen'`` is exactly the behaviour before the
    default changed: values recorded with that code (commit d52e0e7)."""
    torch.manual_seed(0)
    model = _token_model()
    x = torch.randn(2, 3, 32, 48)
    maps = class_token_gradient_map(model.backbone, model.token_head, x,
                                    start_block=-2, affinity=True,
                                    affinity_blocks='chosen')
    torch.testing.assert_close(
        maps.flatten(1).sum(1),
        torch.tensor([21.352109909057617, 19.811031341552734]),
        rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        maps[1, 2].flatten()[:6],
        torch.tensor([0.24131610989570618, 0.24112138152122498,
                      0.2414657473564148, 0.24148251116275787,
                      0.24124763906002045, 0.24111148715019226]),
        rtol=1e-4, atol=1e-6)


def test_getam_predicts_only_present_classes_when_labels_are_known():
    """With image_labels_known (train-set metric, exporter): maps only for
    the classes present in the batch (one backward pass each), equal to
    the all-class maps there; label-free prediction stays all classes."""
    from mmseg_wsss.models.segmentors import image_labels_known
    model = _token_model(affinity=True)
    data = _batch(n=2)  # labels: image 0 {0}, image 1 {0, 2}
    passes = []
    orig = torch.autograd.grad

    def spy(*args, **kwargs):
        passes.append(1)
        return orig(*args, **kwargs)

    torch.autograd.grad = spy
    try:
        with torch.no_grad():
            full = model.test_step(copy.deepcopy(data))
            n_full = len(passes)
            with image_labels_known(model):
                known = model.test_step(copy.deepcopy(data))
            n_known = len(passes) - n_full
            again = model.test_step(copy.deepcopy(data))
    finally:
        torch.autograd.grad = orig
    # one backward pass per class (image and flip are one batch): 4 vs 2
    assert n_full == 4 and n_known == 2
    assert not getattr(model, '_image_labels_known', False)
    for f, k, a in zip(full, known, again):
        torch.testing.assert_close(a.cams.data, f.cams.data)
        assert k.cams.data[[1, 3]].abs().sum() == 0
        torch.testing.assert_close(k.cams.data[[0, 2]], f.cams.data[[0, 2]])

    class Wrapper:  # DDP-style wrapper: the flag reaches the module
        module = model

    with image_labels_known(Wrapper()):
        assert model._image_labels_known
    assert not model._image_labels_known


# ------------------------------------------------------------ authors' code
def test_flip_cls_classifies_the_flipped_view_too():
    cfg = tiny_cam_model_cfg(warmup_iters=100)
    cfg['regularizers'] = [dict(type='ACRLoss', flip_cls=True)]
    model = MODELS.build(cfg)
    calls = count_backbone_calls(model)
    data = model.data_preprocessor(_batch(), True)
    losses = model.loss(**data)
    assert calls == ['mean', 'mean'], 'no extra forward for flip_cls'
    assert {'loss_cls_flip', 'loss_cls_aux_flip'} <= set(losses)
    from mmseg_wsss.utils import stack_img_labels
    labels = stack_img_labels(data['data_samples'], 4)
    ref = model.classification_losses(
        model.backbone.forward_wsss(data['inputs'].flip(-1)), labels)
    torch.testing.assert_close(losses['loss_cls_flip'], ref['loss_cls'])
    # gradients reach the classifier through the flipped view
    model.zero_grad()
    losses['loss_cls_flip'].backward()
    assert model.cam_head.classifier.weight.grad.abs().sum() > 0
    # APC classifies the flipped view with its patch classifier
    apc = MODELS.build(dict(
        type='APC', data_preprocessor=copy.deepcopy(cfg['data_preprocessor']),
        backbone=copy.deepcopy(TINY_VIT),
        patch_head=dict(type='PatchClassifierHead', in_channels=32,
                        num_classes=4),
        regularizers=[dict(type='ACRLoss', flip_cls=True)]))
    out = apc.loss(**apc.data_preprocessor(_batch(), True))
    assert any(k.endswith('_flip') for k in out)


def test_shared_drop_path_replays_the_masks():
    from mmseg_wsss.models.backbones import SharedDropPath
    vit = MODELS.build(dict(TINY_VIT, drop_path_rate=0.5)).train()
    x = torch.randn(4, 3, 32, 32)
    shared = SharedDropPath(vit)
    with shared.record():
        a = vit.forward_wsss(x)['tokens']
    # rates 0, 0.25, 0.5: 2 blocks x 2 residual branches, a mask each
    assert sum(len(v) for v in shared.masks.values()) == 4
    with shared.replay():
        b = vit.forward_wsss(x)['tokens']
    torch.testing.assert_close(a, b)
    assert (vit.forward_wsss(x)['tokens'] - a).abs().max() > 1e-3
    with pytest.raises(RuntimeError, match='batch size'), shared.replay():
        vit.forward_wsss(x[:2])

    # in a segmentor: the flipped forward reuses the online masks
    cfg = tiny_cam_model_cfg(warmup_iters=100)
    cfg['backbone']['drop_path_rate'] = 0.5
    cfg['regularizers'] = [dict(type='ACRLoss', shared_drop_path=True)]
    model = MODELS.build(cfg).train()
    seen = []
    for m in model.backbone.modules():
        if type(m).__name__ == 'DropPath' and m.p > 0:
            m.register_forward_hook(
                lambda mod, inp, out: seen.append(
                    (out / inp[0].clamp(min=1e-12)).flatten(1)[:, 0] > 0))
    model.loss(**model.data_preprocessor(_batch(n=4), True))
    half = len(seen) // 2
    assert half > 0 and len(seen) == 2 * half
    for on, flip in zip(seen[:half], seen[half:]):
        assert torch.equal(on, flip)


def test_predict_with_getam_localizer_under_no_grad():
    model = _token_model(affinity=True)
    data = _batch(n=1)
    with torch.no_grad():
        out = model.test_step(data)[0]
    cams = out.cams.data
    assert cams.shape == (4, 64, 48)
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6
    cfg = tiny_cam_model_cfg()
    cfg['test_cfg'] = dict(localizer='getam')
    with pytest.raises(ValueError, match='token_head'):
        MODELS.build(cfg)


def test_attention_is_materialised_only_where_acr_reads_it():
    cfg = tiny_cam_model_cfg(warmup_iters=100)
    cfg['regularizers'] = [dict(type='ACRLoss', blocks=[-1])]
    model = MODELS.build(cfg)
    explicit = []
    for i, blk in enumerate(model.backbone.blocks):
        blk.attn.register_forward_hook(
            lambda mod, inp, out, i=i: explicit.append(
                (i, out[1] is not None)))
    data = model.data_preprocessor(_batch(), True)
    torch.manual_seed(1)
    lean = model.loss(**copy.deepcopy(data))
    # online + flipped forward: block 2 explicit, blocks 0 and 1 fused
    assert explicit == [(0, False), (1, False), (2, True)] * 2
    explicit.clear()
    model.attn_only_where_read = False  # the old way: every block
    torch.manual_seed(1)
    full = model.loss(**copy.deepcopy(data))
    assert explicit == [(0, True), (1, True), (2, True)] * 2
    for k in full:
        torch.testing.assert_close(lean[k], full[k])
    # without an explicit block list ACR reads (and gets) every block
    model.regularizers[0].blocks = None
    model.attn_only_where_read = True
    assert model.regularizer_attn_blocks is None
