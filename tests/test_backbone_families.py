"""Any mmpretrain / mmseg / timm backbone in every WSSS method: the CAM
baseline, CoSA and APC build from config alone and train; ACR / GETAM are
refused where there is no attention; BatchNorm statistics behave."""
import copy
import glob
import os.path as osp
import sys

import cv2
import pytest
import torch
from mmengine.logging import MessageHub
from mmseg.registry import MODELS

from .conftest import COCO128, DINOV2, REPO, TINY_PREPROCESSOR, require_shared
from .test_cosa import COSA_PIPELINE
from .test_segmentors import (TEST_PIPELINE, TRAIN_PIPELINE, _batch,
                              _toy_ds, _train)


def _mmpretrain_available():
    try:
        import mmpretrain.models  # noqa: F401
        import timm  # noqa: F401
    except Exception as e:  # torch 2.13 CPU build: no torchvision
        return f'{type(e).__name__}: {e}'
    return None


MISSING = _mmpretrain_available()
needs_mmpretrain = pytest.mark.skipif(
    MISSING is not None,
    reason=f'mmpretrain/timm not importable ({MISSING}); the default '
    'environment (torch 2.14.1 + torchvision) has them')

# name: (backbone config, channels of its maps, needs mmpretrain)
FAMILIES = {
    'mmpretrain-vit': (dict(
        type='mmpretrain.VisionTransformer',
        arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                  feedforward_channels=64),
        img_size=64, patch_size=8, out_indices=(0, 1), out_type='featmap',
        wsss=dict(stride=8)), [32, 32], True),
    'mmpretrain-convnext': (dict(
        type='mmpretrain.ConvNeXt',
        arch=dict(depths=[1, 1, 1, 1], channels=[16, 32, 48, 64]),
        out_indices=(0, 1, 2, 3), gap_before_final_norm=False),
        [16, 32, 48, 64], True),
    'mmpretrain-resnet': (dict(
        type='mmpretrain.ResNet', depth=18, stem_channels=16,
        base_channels=16, out_indices=(2, 3)), [64, 128], True),
    'mmseg-vit': (dict(
        type='VisionTransformer', img_size=(64, 64), patch_size=8,
        embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2,
        out_indices=(0, 1), final_norm=True, wsss=dict(stride=8)),
        [32, 32], False),
    'timm': (dict(
        type='mmpretrain.TIMMBackbone', model_name='test_convnext',
        features_only=True, pretrained=False, out_indices=(1, 2, 3)),
        [32, 48, 64], True),
}


def family(name):
    return pytest.param(name, marks=needs_mmpretrain) if FAMILIES[name][2] \
        else name


ALL = [family(n) for n in FAMILIES]


def _decode(channels, num_classes=5):
    return dict(
        type='SegformerHead', in_channels=channels,
        in_index=list(range(len(channels))), channels=16,
        num_classes=num_classes, norm_cfg=dict(type='BN', requires_grad=True),
        loss_decode=dict(type='BalancedCrossEntropyLoss',
                         loss_name='loss_seg'))


def cam_cfg(name, method='CAMSegmentor'):
    backbone, ch, _ = copy.deepcopy(FAMILIES[name])
    cfg = dict(
        type=method,
        data_preprocessor=copy.deepcopy(TINY_PREPROCESSOR),
        backbone=backbone,
        cam_head=dict(type='CAMHead', in_channels=ch[-1], num_classes=4),
        aux_cam_head=dict(type='CAMHead', in_channels=ch[-2 if len(ch) > 1
                                                         else -1],
                          num_classes=4),
        decode_head=_decode(ch),
        train_cfg=dict(warmup_iters=0, cam_scales=(1.0, )),
        test_cfg=dict(scales=(1.0, ), flip=True))
    if method == 'CoSA':
        cfg.update(momentum=0.9, dynamic_threshold=dict(queue_size=2000))
        cfg['decode_head']['loss_decode']['loss_weight'] = 1.0
    return cfg


def apc_cfg(name):
    backbone, ch, _ = copy.deepcopy(FAMILIES[name])
    return dict(
        type='APC',
        data_preprocessor=copy.deepcopy(TINY_PREPROCESSOR),
        backbone=backbone,
        patch_head=dict(type='PatchClassifierHead', in_channels=ch[-1],
                        num_classes=4),
        loss_pcl=dict(type='PatchContrastiveLoss', loss_weight=0.02),
        decode_head=dict(_decode(ch), loss_decode=dict(
            type='CrossEntropyLoss', avg_non_ignore=True)),
        test_cfg=dict(scales=(1.0, ), flip=True))


def _falls(hist, key, ratio=0.9):
    first = sum(h[key] for h in hist[:3]) / 3
    last = sum(h[key] for h in hist[-3:]) / 3
    return last < ratio * first, (first, last)


def _train_cosa(model, batch, steps, lr=2e-3):
    from mmengine.optim import OptimWrapper
    wrapper = OptimWrapper(torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=lr))
    hist = []
    model.update_assignment_net()  # as the EMA hook did in the warm-up
    for _ in range(steps):
        log = model.train_step(batch, wrapper)
        model.update_assignment_net()
        hist.append({k: float(v) for k, v in log.items()})
    return hist


@pytest.mark.parametrize('name', ALL)
def test_cam_baseline_and_apc_train_on_any_backbone(name, toy_root):
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    torch.manual_seed(0)
    batch = _batch(_toy_ds(toy_root, TRAIN_PIPELINE), range(8))
    for cfg, keys in ((cam_cfg(name), ('loss_cls', 'loss_seg')),
                      (apc_cfg(name), ('loss_cls', 'loss_ce'))):
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        model.init_weights()
        hist = _train(model, batch, 12)
        assert all(torch.isfinite(torch.tensor(h['loss'])) for h in hist)
        # the decoder's targets move as the classifier learns: a smaller
        # margin for its loss
        for key, ratio in zip(keys, (0.9, 0.97)):
            ok, values = _falls(hist, key, ratio)
            assert ok, (cfg['type'], key, values)


@pytest.mark.parametrize('name', ALL)
def test_cosa_trains_on_any_backbone(name, toy_root):
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 5)  # past the warm-up: every CoSA loss runs
    torch.manual_seed(0)
    batch = _batch(_toy_ds(toy_root, COSA_PIPELINE), range(8))
    model = MODELS.build(cam_cfg(name, 'CoSA'))
    model.init_weights()
    hist = _train_cosa(model, batch, 12)
    assert {'loss_c2s', 'loss_s2c', 'loss_csc', 'tau_low'} <= set(hist[0])
    assert all(torch.isfinite(torch.tensor(h['loss'])) for h in hist)
    for key in ('loss_cls', 'loss'):
        ok, values = _falls(hist, key)
        assert ok, (key, values)
    model.eval()
    test = _batch(_toy_ds(toy_root, TEST_PIPELINE, test_mode=True), [0])
    out = model.test_step(test)[0]
    assert out.pred_sem_seg.data.shape[-2:] == out.gt_sem_seg.data.shape[
        -2:]
    assert out.cams.data.shape[0] == 4


@pytest.mark.parametrize('name', ALL)
def test_attention_parts_are_refused_without_attention(name):
    cfg = cam_cfg(name)
    cfg['regularizers'] = [dict(type='ACRLoss')]
    with pytest.raises(ValueError, match="ACRLoss.*WSSSViT"):
        MODELS.build(cfg)
    cfg = cam_cfg(name)
    cfg['token_head'] = dict(type='ClsTokenHead', in_channels=32,
                             num_classes=4)
    cfg['test_cfg'] = dict(localizer='getam')
    with pytest.raises(ValueError, match='token_head.*WSSSViT'):
        MODELS.build(cfg)
    cfg = apc_cfg(name)
    cfg['regularizers'] = [dict(type='ACRLoss')]
    with pytest.raises(ValueError, match='WSSSViT'):
        MODELS.build(cfg)


@needs_mmpretrain
def test_batchnorm_statistics(toy_root):
    """ResNet (BN): the online network's no-grad pseudo-label pass leaves
    the running statistics alone; the assignment network's BN buffers follow
    the EMA; norm_eval keeps them frozen, as in mmseg."""
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 5)
    torch.manual_seed(0)
    model = MODELS.build(cam_cfg('mmpretrain-resnet', 'CoSA'))
    model.init_weights()
    model.train()
    x = torch.rand(2, 3, 64, 64) * 255
    bn = model.backbone.layer4[0].bn1
    before = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    model.multi_scale_cam(x)  # the CAM baseline's pseudo-label pass
    assert torch.equal(bn.running_mean, before[0])
    assert torch.equal(bn.num_batches_tracked, before[1])
    an_bn = model.assignment_net['backbone'].layer4[0].bn1
    with torch.no_grad():  # an AN pass (eval mode) changes nothing either
        model.forward_net(model.assignment_net, x / 255.0)
    assert torch.equal(an_bn.running_mean, before[0])
    # a training forward of ON updates its BN; the EMA carries it to AN
    model.backbone(x / 255.0)
    assert not torch.equal(bn.running_mean, before[0])
    old_an = an_bn.running_mean.clone()
    model.update_assignment_net()  # m = 0.9
    assert torch.allclose(an_bn.running_mean,
                          0.9 * old_an + 0.1 * bn.running_mean)
    # norm_eval: mmpretrain's ResNet keeps BN in eval mode while training
    cfg = cam_cfg('mmpretrain-resnet', 'CoSA')
    cfg['backbone']['norm_eval'] = True
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    bn = model.backbone.layer4[0].bn1
    frozen = bn.running_mean.clone()
    model.backbone(x / 255.0)
    assert not bn.training and torch.equal(bn.running_mean, frozen)
    # SyncBN builds and, in a single process, behaves as BN
    cfg = cam_cfg('mmpretrain-resnet')
    cfg['backbone']['norm_cfg'] = dict(type='SyncBN', requires_grad=True)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    model.loss(x, _samples(2))


def _samples(n):
    from mmseg.structures import SegDataSample
    out = []
    for _ in range(n):
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
        s.gt_img_labels = torch.tensor([1., 0., 1., 0.])
        out.append(s)
    return out


# ------------------------------------------------------------ ViT layouts
DINO_CFG = dict(img_size=518, patch_size=14, embed_dims=384, num_layers=12,
                num_heads=6, layer_scale_init=1e-5)


def _dinov2_reference():
    from mmseg_wsss.models.backbones import WSSSViT
    require_shared(DINOV2)
    ref = WSSSViT(pretrained=DINOV2, **DINO_CFG)
    ref.init_weights()
    return DINOV2, ref


def _assert_same_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _convert(src, dst, layout):
    """tools/convert_vit_weights.py, run in this process (its import
    costs more than the conversion)."""
    import contextlib
    import importlib.util
    import io
    spec = importlib.util.spec_from_file_location(
        'convert_vit_weights', osp.join(REPO, 'tools',
                                        'convert_vit_weights.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = io.StringIO()
    argv = sys.argv
    sys.argv = ['convert_vit_weights.py', src, dst, '--to', layout]
    try:
        with contextlib.redirect_stdout(out):
            tool.main()
    finally:
        sys.argv = argv
    assert f'timm layout -> {dst}: {layout} layout' in out.getvalue()


def test_every_vit_layout_loads_to_identical_parameters(tmp_path):
    """The DINOv2-S file rewritten in the DINOv2 / mmpretrain layouts (and a
    whole mmpretrain model checkpoint with a head), through the conversion
    tool, loads into WSSSViT -- as pretrained= and as init_cfg=Pretrained --
    to exactly the parameters of the timm file."""
    from mmseg_wsss.models.backbones import WSSSViT
    src, ref = _dinov2_reference()
    for layout in ('timm', 'dinov2', 'mmpretrain'):
        dst = str(tmp_path / f'{layout}.pth')
        _convert(src, dst, layout)
        if layout == 'mmpretrain':  # a whole classifier checkpoint
            ck = torch.load(dst, weights_only=True)
            ck['state_dict']['head.layers.head.weight'] = torch.zeros(5, 384)
            torch.save(ck, dst)
        for kw in (dict(pretrained=dst),
                   dict(init_cfg=dict(type='Pretrained', checkpoint=dst))):
            m = WSSSViT(**DINO_CFG, **kw)
            m.init_weights()
            _assert_same_params(ref, m)


def test_mmseg_layout_and_strict_errors(tmp_path):
    from mmseg_wsss.models.backbones import WSSSViT
    from mmseg_wsss.models.backbones.vit_layouts import (detect_layout,
                                                         from_timm)
    cfg = dict(img_size=32, patch_size=8, embed_dims=32, num_layers=2,
               num_heads=2, aux_layer=-1)
    src = WSSSViT(**cfg)
    src.init_weights()
    mmseg = from_timm(src.state_dict(), 'mmseg')
    assert 'layers.0.attn.attn.in_proj_weight' in mmseg
    assert 'ln1.weight' in mmseg and detect_layout(mmseg) == 'mmseg'
    path = str(tmp_path / 'mmseg.pth')
    torch.save(dict(state_dict={'backbone.' + k: v for k, v in mmseg.items()},
                    meta=dict()), path)
    dst = WSSSViT(**cfg, pretrained=path)
    dst.init_weights()
    _assert_same_params(src, dst)
    # a checkpoint of another architecture: the error names the layout and
    # the keys
    bad = WSSSViT(**dict(cfg, num_layers=3), pretrained=path)
    with pytest.raises(RuntimeError, match=r'mmseg layout.*missing keys'):
        bad.init_weights()
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'x.pth')
    with pytest.raises(ValueError, match='not a ViT checkpoint'):
        WSSSViT(**cfg, pretrained=str(tmp_path / 'x.pth')).init_weights()


def test_url_checkpoint_goes_through_mmengine_loader(tmp_path):
    """A URL-style checkpoint (a local test scheme registered with
    mmengine's CheckpointLoader; no network) loads through it."""
    from mmengine.runner import CheckpointLoader

    from mmseg_wsss.models.backbones import WSSSViT
    from mmseg_wsss.utils import safe_torch_load
    cfg = dict(img_size=32, patch_size=8, embed_dims=32, num_layers=2,
               num_heads=2, aux_layer=-1)
    src = WSSSViT(**cfg)
    src.init_weights()
    torch.save(src.state_dict(), tmp_path / 'w.pth')
    calls = []

    def load_test_scheme(filename, map_location=None):
        calls.append(filename)
        return safe_torch_load(
            str(tmp_path / filename[len('wssstest://'):]), map_location)

    CheckpointLoader.register_scheme('wssstest://', load_test_scheme,
                                     force=True)
    dst = WSSSViT(**cfg, init_cfg=dict(type='Pretrained',
                                       checkpoint='wssstest://w.pth'))
    dst.init_weights()
    assert calls == ['wssstest://w.pth']
    _assert_same_params(src, dst)


@needs_mmpretrain
def test_wsssvit_equals_mmpretrain_vit_on_a_real_photo(tmp_path):
    """DINOv2-S through WSSSViT and through mmpretrain's VisionTransformer
    (fed by the project's own conversion): the same patch tokens on a real
    coco128 photo at 224 x 224."""
    from mmpretrain.models import VisionTransformer

    require_shared(COCO128)
    src, ours = _dinov2_reference()
    dst = str(tmp_path / 'mmpretrain.pth')
    _convert(src, dst, 'mmpretrain')
    theirs = VisionTransformer(
        arch='dinov2-small', img_size=518, patch_size=14,
        layer_scale_init_value=1e-5, out_type='featmap',
        init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='backbone.'))
    theirs.init_weights()
    theirs.eval()
    ours.eval()
    path = sorted(glob.glob(osp.join(COCO128, 'JPEGImages', '*.jpg')))[0]
    img = cv2.resize(cv2.imread(path)[:, :, ::-1], (224, 224))
    x = (torch.from_numpy(img.copy()).float() - torch.tensor(
        [123.675, 116.28, 103.53])) / torch.tensor([58.395, 57.12, 57.375])
    x = x.permute(2, 0, 1)[None]
    with torch.no_grad():
        a = ours.forward_wsss(x)['tokens']
        b = theirs(x)[-1]
    assert a.shape == b.shape == (1, 384, 16, 16)
    assert (a - b).abs().max() <= 1e-4
