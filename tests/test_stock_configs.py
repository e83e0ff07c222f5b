"""Your own mmseg config: stock ``mmseg::`` bases load, this package's
configs inherit from outside the checkout (``mmseg_wsss::``), one tool
turns a stock config into a CAM / CoSA / APC config, stock model keys work
or say what to write, and each method checks its preconditions."""
import copy
import os
import os.path as osp
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import Runner
from mmseg.registry import MODELS

from mmseg_wsss.engine.hooks.config_check_hook import method_preconditions

from .conftest import REPO, tiny_cam_model_cfg, train_steps
from .test_runner import ENV

STOCK = {
    'segformer-mit-b0':
    'segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    'deeplabv3plus-r50':
    'deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py',
    'upernet-swin-t':
    'swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-'
    '512x512.py',
    'upernet-vit-b16': 'vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py',
}
# tiny widths of the same architectures, for CPU training steps
TINY = {
    'segformer-mit-b0': ['model.backbone.num_layers=[1,1,1,1]',
                         'model.decode_head.channels=32'],
    'deeplabv3plus-r50': ['model.backbone.depth=18',
                          'model.decode_head.in_channels=512',
                          'model.decode_head.c1_in_channels=64',
                          'model.decode_head.channels=32',
                          'model.decode_head.c1_channels=8'],
    'upernet-swin-t': ['model.backbone.embed_dims=32',
                       'model.backbone.depths=[1,1,1,1]',
                       'model.backbone.num_heads=[1,2,2,4]',
                       'model.decode_head.in_channels=[32,64,128,256]',
                       'model.decode_head.channels=32'],
    'upernet-vit-b16': ['model.backbone.embed_dims=64',
                        'model.backbone.num_layers=4',
                        'model.backbone.num_heads=2',
                        'model.backbone.out_indices=[0,1,2,3]',
                        'model.decode_head.in_channels=[64,64,64,64]',
                        'model.decode_head.channels=32'],
}
METHODS = ('cam', 'cosa', 'apc')


def _one_line(tmp_path, base, name='one.py'):
    path = tmp_path / name
    path.write_text(f'_base_ = [{base!r}]\n')
    return str(path)


# ------------------------------------------------------------ 1. bases
@pytest.mark.parametrize('without_pkg_resources', [False, True])
def test_a_one_line_mmseg_config_builds_its_model(tmp_path,
                                                   without_pkg_resources):
    """`_base_ = ['mmseg::...']` alone, in a fresh process: with the
    environment's setuptools (the README's set-up keeps pkg_resources), and
    with pkg_resources gone (setuptools >= 81), where importing mmseg_wsss
    first makes mmengine's look-up work."""
    cfg = _one_line(tmp_path, 'mmseg::' + STOCK['segformer-mit-b0'])
    hide = "import sys; sys.modules['pkg_resources'] = None; " \
        if without_pkg_resources else ''
    pre = 'import mmseg_wsss; ' if without_pkg_resources else ''
    code = (f"{hide}{pre}from mmengine.config import Config; "
            "from mmengine.registry import init_default_scope; "
            "init_default_scope('mmseg'); "
            "from mmseg.utils import register_all_modules; "
            "register_all_modules(); "
            "from mmseg.registry import MODELS; "
            f"cfg = Config.fromfile({cfg!r}); "
            "print(type(MODELS.build(cfg.model)).__name__)")
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == 'EncoderDecoder'


def test_mmseg_wsss_configs_inherit_from_outside_a_regular_install(
        tmp_path):
    """A wheel (non-editable install) carries the configs: a user's config
    in a folder outside the checkout inherits `mmseg_wsss::` and builds."""
    wheels = tmp_path / 'wheels'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(wheels), REPO],
                   check=True, capture_output=True, env=ENV, timeout=300)
    site = tmp_path / 'site'
    with zipfile.ZipFile(next(wheels.glob('*.whl'))) as z:
        z.extractall(site)
    assert (site / 'mmseg_wsss/.mim/configs/cosa/cosa_vitb_voc.py').is_file()
    # the model index and every metafile it imports travel too (issue #28)
    import yaml
    index = yaml.safe_load(
        (site / 'mmseg_wsss/.mim/model-index.yml').read_text())
    assert len(index['Import']) >= 9
    for meta in index['Import']:
        assert (site / 'mmseg_wsss/.mim' / meta).is_file(), meta
        assert (site / 'mmseg_wsss/.mim' / meta).with_name(
            'README.md').is_file(), meta
    user = tmp_path / 'my_project'
    user.mkdir()
    (user / 'my_cosa.py').write_text(
        "_base_ = ['mmseg_wsss::cosa/cosa_tiny_toy.py']\n"
        "model = dict(momentum=0.99)\n")
    code = ("import mmseg_wsss, os; "
            "assert mmseg_wsss.__file__.startswith(os.environ['SITE']), "
            "mmseg_wsss.__file__; "
            "from mmengine.config import Config; "
            "from mmengine.registry import init_default_scope; "
            "init_default_scope('mmseg'); "
            "from mmseg.registry import MODELS; "
            "cfg = Config.fromfile('my_cosa.py'); "
            "m = MODELS.build(cfg.model); "
            "from mmengine.hub import get_config; "
            "apc = get_config('mmseg_wsss::apc/apc_tiny_toy.py'); "
            "print(type(m).__name__, m.momentum, "
            "cfg.train_dataloader.dataset.type, apc.model.type)")
    env = dict(ENV, PYTHONPATH=str(site), SITE=str(site))
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(user),
                          env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == \
        'CoSA 0.99 WSSSToyDataset APC'


# ------------------------------------------------------------ 2. the tool
def _tool(*args):
    """tools/wsss_config.py, in this process (same code as the command)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'wsss_config_tool', osp.join(REPO, 'tools', 'wsss_config.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cwd = os.getcwd()
    os.chdir(REPO)  # recipes are named relative to the repository
    try:
        tool.main(list(args))
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize('name', sorted(STOCK))
def test_shipped_examples_are_the_tools_output_and_keep_the_weights(
        tmp_path, name):
    """configs/stock/<method>_<stock>_voc.py are exactly what the
    documented command writes today; they build, and their backbone loads
    the stock config's pretrained weights (same init_cfg / pretrained)."""
    from mmseg_wsss.utils import register_all_modules
    register_all_modules()
    stock = Config.fromfile(_one_line(tmp_path, 'mmseg::' + STOCK[name]))
    want = stock.model.backbone.get('init_cfg') or dict(
        type='Pretrained', checkpoint=stock.model.pretrained)
    for method in METHODS:
        shipped = osp.join(REPO, 'configs', 'stock',
                           f'{method}_{name}_voc.py')
        out = str(tmp_path / f'{method}.py')
        _tool('mmseg::' + STOCK[name], '--method', method, '--out', out)
        text = open(out).read().replace(
            f'--out {out}', f'--out configs/stock/{method}_{name}_voc.py')
        assert text == open(shipped).read(), \
            f'{shipped} differs from the tool\'s output: regenerate it'
        cfg = Config.fromfile(shipped)
        model = MODELS.build(cfg.model)
        got = model.backbone.init_cfg
        got = got if isinstance(got, dict) else dict(
            type='Pretrained', checkpoint=getattr(model.backbone,
                                                  'pretrained', None))
        assert dict(got) == dict(want), (method, got, want)
        assert type(model).__name__ == dict(
            cam='CAMSegmentor', cosa='CoSA', apc='APC')[method]


def _toy_cfg(tmp_path, toy_root, name, method):
    """The tool's output for the stock config at tiny width with the
    method's toy recipe, pointed at the test's synthetic set."""
    out = str(tmp_path / f'{method}_{name}.py')
    recipe = dict(cam='configs/baseline/cam_tiny_toy.py',
                  cosa='configs/cosa/cosa_tiny_toy.py',
                  apc='configs/apc/apc_tiny_toy.py')[method]
    _tool('mmseg::' + STOCK[name], '--recipe', recipe, '--out', out,
          '--cfg-options', *TINY[name])
    cfg = Config.fromfile(out)
    cfg.model.pretrained = None  # nothing downloads in tests
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.pop('pretrained', None)
    for key in ('train_dataloader', 'val_dataloader'):
        cfg[key].dataset.data_root = toy_root
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    cfg.val_dataloader.batch_size = 1
    return cfg


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('name', sorted(STOCK))
def test_converted_stock_configs_train_and_test_on_the_synthetic_set(
        tmp_path, toy_root, name, method):
    """Each stock architecture, converted with each method's recipe,
    trains (loss falling over a few steps on one batch, every loss term
    on) and predicts full-size masks."""
    cfg = _toy_cfg(tmp_path, toy_root, name, method)
    start = 'seg_start_iter' if method == 'apc' else 'warmup_iters'
    cfg.model.train_cfg[start] = 0
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    if hasattr(model, 'update_assignment_net'):
        model.update_assignment_net(momentum=0.0)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batch = next(iter(loader))
    names = set()
    totals = train_steps(
        model, batch, 8, lr=1e-3,
        on_losses=lambda losses: names.update(
            k for k in losses if k.startswith('loss')),
        after_step=getattr(model, 'update_assignment_net', None))
    assert np.isfinite(totals).all()
    assert np.mean(totals[-2:]) < 0.9 * np.mean(totals[:2]), totals
    # the decoder's loss is on (CoSA: L_c2s), not only classification
    assert dict(cam='loss_seg', cosa='loss_c2s', apc='loss_ce')[method] \
        in names, names
    model.eval()
    val = next(iter(Runner.build_dataloader(cfg.val_dataloader, seed=0)))
    with torch.no_grad():
        out = model.test_step(val)
    for sample in out:
        h, w = sample.metainfo['ori_shape'][:2]
        assert tuple(sample.pred_sem_seg.data.shape[-2:]) == (h, w)
        assert int(sample.pred_sem_seg.data.max()) <= 4


# ------------------------------------------------------------ 3. stock keys
def _stock_cosa_cfg():
    cfg = tiny_cam_model_cfg()
    cfg.update(type='CoSA', momentum=0.9)
    return cfg


def test_auxiliary_head_and_neck_say_what_to_write():
    cfg = _stock_cosa_cfg()
    cfg['auxiliary_head'] = dict(type='FCNHead', in_channels=32, channels=8,
                                 num_classes=5)
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    assert 'model.auxiliary_head (FCNHead)' in str(err.value)
    assert 'Write auxiliary_head=None in the model dict.' in str(err.value)
    cfg = _stock_cosa_cfg()
    cfg['neck'] = dict(type='MultiLevelNeck', in_channels=[32],
                       out_channels=32)
    with pytest.raises(ValueError, match='Write neck=None'):
        MODELS.build(cfg)
    cfg = _stock_cosa_cfg()
    cfg['auxiliary_head'] = None
    cfg['neck'] = None
    MODELS.build(cfg)


def test_stock_preprocessor_pretrained_slide_and_loss_list():
    cfg = _stock_cosa_cfg()
    cfg['data_preprocessor'] = dict(cfg['data_preprocessor'],
                                    type='SegDataPreProcessor')
    cfg['pretrained'] = 'open-mmlab://some_weights'
    cfg['decode_head']['loss_decode'] = [
        dict(type='CrossEntropyLoss', loss_name='loss_ce', loss_weight=1.0),
        dict(type='DiceLoss', loss_name='loss_dice', loss_weight=0.5)]
    model = MODELS.build(cfg)
    assert type(model.data_preprocessor).__name__ == 'WSSSDataPreprocessor'
    assert model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='open-mmlab://some_weights')
    logits = torch.randn(2, 5, 8, 8)
    label = torch.randint(0, 5, (2, 16, 16))
    label[0, :4] = 255
    losses = model.decode_loss(logits, label)
    assert set(losses) == {'loss_ce', 'loss_dice'}
    # mmseg's CrossEntropyLoss (avg_non_ignore=False): the mean over all
    # pixels, ignored ones counting 0
    ce = torch.nn.functional.cross_entropy(
        torch.nn.functional.interpolate(logits, (16, 16), mode='bilinear'),
        label, ignore_index=255, reduction='none').mean()
    torch.testing.assert_close(losses['loss_ce'], ce)
    # the weak/strong view dict of CoSA through the converted preprocessor
    # (mmseg's own: KeyError: 0)
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_img_labels = torch.tensor([1., 0., 1., 0.])
        s.valid_mask = PixelData(data=torch.ones(1, 64, 64))
        s.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
        samples.append(s)
    views = {k: [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
                 for _ in range(2)] for k in ('weak', 'strong')}
    data = model.data_preprocessor(dict(inputs=views, data_samples=samples),
                                   training=True)
    assert set(data['inputs']) == {'weak', 'strong'}
    cfg = _stock_cosa_cfg()
    cfg['test_cfg'] = dict(mode='slide', crop_size=(64, 64), stride=(32, 32))
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    assert "test_cfg.mode='slide'" in str(err.value)
    assert "test_cfg=dict(mode='whole', ...)" in str(err.value)


# ------------------------------------------------------------ 4. checks
CONVNEXT = dict(type='mmpretrain.ConvNeXt', arch='atto',
                gap_before_final_norm=False,
                out_indices=(1, 3), drop_path_rate=0.0)


def _convnext_cam(**wsss):
    pytest.importorskip('mmpretrain')
    backbone = dict(CONVNEXT, wsss=dict(stride=32, **wsss))
    return dict(tiny_cam_model_cfg(), backbone=backbone,
                cam_head=dict(type='CAMHead', in_channels=None,
                              num_classes=4),
                aux_cam_head=dict(type='CAMHead', in_channels=None,
                                  num_classes=4),
                decode_head=None)


def test_wsss_index_out_of_range_and_in_channels_are_checked_at_build():
    # out_indices=(1, 3): two maps, 80 and 320 channels; stage 3 is index 1
    with pytest.raises(ValueError) as err:
        MODELS.build(_convnext_cam(cam=3))
    msg = str(err.value)
    assert 'backbone.wsss.cam=3: position 3 is out of range' in msg
    assert 'returns 2 maps (0: 80 ch / stride 8, 1: 320 ch / stride 32)' \
        in msg
    assert 'stage 3 is position 1 or -1' in msg
    model = MODELS.build(_convnext_cam(cam=1, aux=0))  # None: inferred
    assert model.cam_head.classifier.in_channels == 320
    assert model.aux_cam_head.classifier.in_channels == 80
    cfg = _convnext_cam(cam=1, aux=0)
    cfg['cam_head']['in_channels'] = 768
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    assert ('model.cam_head.in_channels=768, but the map it reads, backbone '
            'output 1 (backbone.wsss.cam), has 320 channels: write '
            'cam_head=dict(in_channels=320, ...)') in str(err.value)


def _precondition_cfg(method='cosa', hooks=True, constructor=True,
                      strong=True, pack=True):
    pipeline = [dict(type='LoadImageFromFile')]
    if strong:
        pipeline.append(dict(type='StrongPhotometricView'))
    if pack:
        pipeline.append(dict(type='PackWSSSInputs'))
    return Config(dict(
        train_dataloader=dict(dataset=dict(pipeline=pipeline)),
        optim_wrapper=dict(constructor='TrainableOnlyOptimWrapperConstructor'
                           if constructor else None)))


def test_each_method_checks_its_preconditions():
    model = MODELS.build(_stock_cosa_cfg())
    model.train_cfg['warmup_iters'] = 300
    ok = method_preconditions(_precondition_cfg(), model,
                              ['AssignmentNetEMAHook'], 1000)
    assert ok == []
    found = method_preconditions(
        _precondition_cfg(constructor=False, strong=False, pack=False),
        model, [], 100)
    text = '\n'.join(f'{lvl}: {msg}' for lvl, msg in found)
    assert "error: CoSA: no AssignmentNetEMAHook" in text
    assert "custom_hooks = [dict(type='AssignmentNetEMAHook')]" in text
    assert ("dict(constructor='TrainableOnlyOptimWrapperConstructor', "
            in text)
    assert 'warning: CoSA: the training pipeline has no ' \
        'StrongPhotometricView' in text
    assert "End train_pipeline with dict(type='PackWSSSInputs')" in text
    assert ('warning: CoSA: model.train_cfg.warmup_iters=300 is not below '
            'train_cfg.max_iters=100: the decode head\'s loss and L_c2s / '
            'L_s2c / L_csc never switch on') in text


def test_train_py_stops_cosa_without_its_ema_hook(tmp_path, toy_root):
    cfg = tmp_path / 'c.py'
    cfg.write_text(f'''
_base_ = [{osp.join(REPO, 'configs', 'cosa', 'cosa_tiny_toy.py')!r}]
custom_hooks = []
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={toy_root!r}))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={toy_root!r}))
test_dataloader = val_dataloader
val_cfg = dict(extra_evals=[])
train_cfg = dict(max_iters=2, val_interval=100)
''')
    proc = subprocess.run([sys.executable, 'tools/train.py', str(cfg),
                           '--work-dir', str(tmp_path / 'w')], cwd=REPO,
                          env=ENV, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'CoSA: no AssignmentNetEMAHook' in out
    assert 'Iter(train)' not in out
    assert 'warmup_iters=300 is not below train_cfg.max_iters=2' in out


# ------------------------------------------------------------ 5. batches
def test_batched_prediction_equals_one_image_at_a_time(toy_root):
    """A test batch of images of different sizes padded to a size divisor
    gives each image the prediction it gets alone (tools/test.py's batch
    1): every pixel."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/baseline/cam_tiny_toy.py'))
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=8)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    cfg.val_dataloader.dataset.data_root = toy_root
    cfg.val_dataloader.num_workers = 0
    cfg.val_dataloader.persistent_workers = False
    from mmseg.registry import DATASETS
    ds = DATASETS.build(cfg.val_dataloader.dataset)
    items = [ds[i] for i in range(4)]
    sizes = {tuple(x['inputs'].shape[-2:]) for x in items}
    assert len(sizes) > 1  # the batch is padded
    from mmengine.dataset import pseudo_collate
    with torch.no_grad():
        batched = model.test_step(pseudo_collate(copy.deepcopy(items)))
        alone = [model.test_step(pseudo_collate([copy.deepcopy(x)]))[0]
                 for x in items]
    for b, a in zip(batched, alone):
        assert torch.equal(b.pred_sem_seg.data, a.pred_sem_seg.data)
        torch.testing.assert_close(b.seg_logits.data, a.seg_logits.data)
