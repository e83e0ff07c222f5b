"""Failure paths: untrusted checkpoints and label files run no code, bad
labels and images stop early with the file named, typos in configs are
refused, NaN stops every rank, CoSA loads a checkpoint without AN."""
import json
import logging
import os
import os.path as osp
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.optim import AmpOptimWrapper
from mmengine.runner import CheckpointLoader, load_checkpoint
from mmseg.registry import DATASETS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from PIL import Image

from mmseg_wsss.datasets import load_cls_labels, make_toy_voc, save_cls_labels
from mmseg_wsss.engine import NonFiniteCheckHook
from mmseg_wsss.utils import (UnsafeCheckpointError, load_state_dict_file,
                              trust_checkpoint)
from mmseg_wsss.utils import checkpoint as ckpt_mod

from .conftest import (REPO, TINY_VIT, VOC_META, free_port, require_shared,
                       tiny_cam_model_cfg)
from .test_runner import ENV, run, write_cfg


class _Payload:
    """Unpickling it creates the file ``path`` (what an attack would do)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def _crafted_checkpoint(tmp_path, marker):
    model = MODELS.build(tiny_cam_model_cfg(decode_head=False))
    path = str(tmp_path / 'crafted.pth')
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(note=_Payload(str(marker)))), path)
    return path


class _GetattrPayload:
    """Writes a file through ``getattr(ndarray, 'tofile')`` -- the escape a
    plain allow-listed ``getattr`` would open."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (np.ndarray.tofile, (np.zeros(2), self.path))


@pytest.fixture(params=['weights_only', 'torch<2.4'])
def loader_path(request, monkeypatch):
    """Both safe loaders: torch's weights-only unpickler with the allow-list
    (torch >= 2.4) and the restricted unpickler used on older torch."""
    monkeypatch.setattr(ckpt_mod, '_FORCE_LEGACY',
                        request.param == 'torch<2.4')
    monkeypatch.delenv(ckpt_mod.TRUST_ENV, raising=False)
    return request.param


# ------------------------------------------------------------ checkpoints
def test_getattr_escape_is_refused(tmp_path, loader_path):
    marker = tmp_path / 'written'
    path = str(tmp_path / 'escape.pth')
    torch.save(dict(meta=dict(x=_GetattrPayload(str(marker)))), path)
    with pytest.raises(UnsafeCheckpointError, match='getattr|tofile'):
        load_state_dict_file(path)
    assert not marker.exists()


def test_crafted_checkpoint_is_refused_on_every_loader(tmp_path,
                                                       loader_path):
    marker = tmp_path / 'PWNED'
    path = _crafted_checkpoint(tmp_path, marker)
    model = MODELS.build(tiny_cam_model_cfg(decode_head=False))

    loaders = {
        'load_from / --resume / tools/test.py':
        lambda: CheckpointLoader.load_checkpoint(path),
        'load_checkpoint': lambda: load_checkpoint(model, path),
        'backbone.pretrained': lambda: load_state_dict_file(path),
        "init_cfg=dict(type='Pretrained')": lambda: MODELS.build(
            dict(tiny_cam_model_cfg(decode_head=False),
                 init_cfg=dict(type='Pretrained',
                               checkpoint=path))).init_weights(),
        # every URL scheme (http(s)://, open-mmlab://, mmcls://,
        # torchvision://) downloads through mmengine's load_url
        'URL download': lambda: __import__(
            'mmengine.runner.checkpoint', fromlist=['load_url']).load_url(
                'file://' + path, model_dir=str(tmp_path / 'hub')),
    }
    for name, load in loaders.items():
        with pytest.raises(UnsafeCheckpointError) as err:
            load()
        msg = str(err.value)
        assert 'refusing to load' in msg and 'io.open' in msg, name
        assert 'crafted.pth' in msg and ckpt_mod.TRUST_ENV in msg, name
        assert '\x1b' not in msg  # no terminal escape codes
        assert not marker.exists(), f'{name} ran code from the file'


def test_tools_test_refuses_crafted_checkpoint_then_trusts_it(
        tmp_path, toy_root):
    marker = tmp_path / 'PWNED'
    path = _crafted_checkpoint(tmp_path, marker)
    cfg = write_cfg(tmp_path, toy_root, max_iters=4)
    env = {k: v for k, v in ENV.items() if k != ckpt_mod.TRUST_ENV}
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', cfg, path, '--work-dir',
         str(tmp_path / 't'), '--cfg-options',
         'model.decode_head=None'], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'UnsafeCheckpointError' in proc.stderr and 'io.open' in \
        proc.stderr
    assert not marker.exists()
    # the explicit opt-in for a file the user trusts
    trust_checkpoint(path)
    try:
        ck = CheckpointLoader.load_checkpoint(path)
    finally:
        ckpt_mod._trusted.clear()
    assert 'state_dict' in ck and marker.exists()


def test_trust_by_environment_variable(tmp_path, monkeypatch):
    marker = tmp_path / 'ran'
    path = _crafted_checkpoint(tmp_path, marker)
    monkeypatch.setenv(ckpt_mod.TRUST_ENV, str(tmp_path / 'other.pth'))
    with pytest.raises(UnsafeCheckpointError):
        load_state_dict_file(path)
    monkeypatch.setenv(ckpt_mod.TRUST_ENV,
                       os.pathsep.join([str(tmp_path / 'other.pth'), path]))
    assert 'state_dict' in load_state_dict_file(path)
    assert marker.exists()


def test_legitimate_files_load_safely(tmp_path, loader_path):
    """A runner checkpoint (meta, message hub with HistoryBuffers, optimizer
    and scheduler states, RNG states of numpy / python / torch) and a plain
    state dict load with the weights-only unpickler, no opt-in."""
    from mmengine.logging import HistoryBuffer

    from mmseg_wsss.engine import get_rng_states
    model = MODELS.build(tiny_cam_model_cfg())
    opt = torch.optim.AdamW(model.parameters())
    model(torch.rand(1, 3, 64, 64), mode='tensor')['cam'].sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LinearLR(opt)
    ck = dict(
        meta=dict(seed=np.int64(3), iter=4, cfg='model = dict()',
                  dataset_meta=dict(classes=('background', 'a'),
                                    palette=[[0, 0, 0], [1, 2, 3]])),
        state_dict=model.state_dict(), optimizer=opt.state_dict(),
        param_schedulers=[sched.state_dict()],
        message_hub=dict(log_scalars={'train/loss': HistoryBuffer(
            [0.5, np.float64(0.25)], [1, 1])},
            runtime_info=dict(iter=4, epoch=0)),
        rng_states=dict(world_size=1, states=[get_rng_states()]))
    path = str(tmp_path / 'ok.pth')
    torch.save(ck, path)
    back = CheckpointLoader.load_checkpoint(path)
    assert back['meta']['seed'] == 3
    assert back['rng_states']['states'][0]['numpy'][0] == 'MT19937'
    plain = str(tmp_path / 'plain.pth')
    torch.save(model.state_dict(), plain)
    assert set(load_state_dict_file(plain)) == set(model.state_dict())


def test_shared_dinov2_weights_load_safely():
    from .conftest import DINOV2
    require_shared(DINOV2)
    state = load_state_dict_file(DINOV2)
    assert 'cls_token' in state and len(state) > 100


# ------------------------------------------------------------ label files
def test_crafted_label_file_is_refused(tmp_path):
    marker = tmp_path / 'PWNED'
    path = str(tmp_path / 'cls_labels.npy')
    np.save(path, {'a': np.zeros(4, np.float32), 'b': _Payload(str(marker))},
            allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError) as err:
        load_cls_labels(path)
    assert path in str(err.value) and 'io.open' in str(err.value)
    assert not marker.exists()
    # ... also when a dataset is built from it
    root = str(tmp_path / 'toy')
    make_toy_voc(root, num_train=4, num_val=2, size_range=(64, 64), seed=0)
    table = load_cls_labels(osp.join(root, 'cls_labels.npy'))
    table[next(iter(table))] = _Payload(str(marker))
    np.save(osp.join(root, 'bad.npy'), table, allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError, match='bad.npy'):
        DATASETS.build(dict(
            type='WSSSToyDataset', data_root=root,
            ann_file='ImageSets/Segmentation/train.txt',
            cls_labels_file='bad.npy',
            data_prefix=dict(img_path='JPEGImages')))
    assert not marker.exists()


def test_real_voc_label_file_still_loads():
    require_shared(VOC_META)
    table = load_cls_labels(osp.join(VOC_META, 'cls_labels_onehot.npy'))
    assert len(table) == 12031
    assert table['2007_000032'].tolist() == [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]


@pytest.mark.parametrize('ext', ['npy', 'npz', 'json'])
def test_label_file_formats_round_trip(tmp_path, ext):
    labels = {'x1': np.array([0, 1, 1], np.float32),
              'x2': np.array([1, 0, 0], np.float32)}
    path = str(tmp_path / f'labels.{ext}')
    save_cls_labels(labels, path)
    back = load_cls_labels(path)
    assert sorted(back) == ['x1', 'x2']
    for k, v in labels.items():
        np.testing.assert_array_equal(np.asarray(back[k], np.float32), v)
    if ext != 'npy':  # no pickle anywhere in the plain formats
        raw = open(path, 'rb').read()
        assert b'\x80\x02' not in raw and b'numpy.core' not in raw


def test_make_cls_labels_writes_json(tmp_path, toy_root):
    out = str(tmp_path / 'labels.json')
    run([sys.executable, 'tools/make_cls_labels.py',
         osp.join(toy_root, 'SegmentationClass'),
         osp.join(toy_root, 'ImageSets', 'Segmentation', 'train.txt'),
         '--num-classes', '4', '--out', out])
    table = json.load(open(out))
    expect = load_cls_labels(osp.join(toy_root, 'cls_labels.npy'))
    assert table.keys() <= expect.keys() and len(table) == 40
    for k, v in table.items():
        assert v == expect[k].astype(int).tolist()


# ------------------------------------------------------------ label values
@pytest.mark.parametrize('value,hint', [(float('nan'), 'exactly 0'),
                                        (255.0, '255'), (-1.0, '-1/1'),
                                        (0.5, 'exactly 0')])
def test_label_values_are_checked_when_the_dataset_is_built(
        tmp_path, value, hint):
    root = str(tmp_path / 'toy')
    make_toy_voc(root, num_train=4, num_val=2, size_range=(64, 64), seed=0)
    table = load_cls_labels(osp.join(root, 'cls_labels.npy'))
    first = sorted(table)[1]
    table[first] = table[first].copy()
    table[first][2] = value
    np.save(osp.join(root, 'cls_labels.npy'), table)
    with pytest.raises(ValueError) as err:
        DATASETS.build(dict(
            type='WSSSToyDataset', data_root=root,
            ann_file='ImageSets/Segmentation/train.txt',
            cls_labels_file='cls_labels.npy',
            data_prefix=dict(img_path='JPEGImages')))
    msg = str(err.value)
    assert repr(first) in msg and 'cls_labels.npy' in msg and hint in msg
    assert 'indices [2]' in msg


# ------------------------------------------------------------ masks, images
def _rgb_mask(root, split_file, index=1):
    ids = open(osp.join(root, 'ImageSets', 'Segmentation',
                        split_file)).read().split()
    path = osp.join(root, 'SegmentationClass', ids[index] + '.png')
    rgb = np.array(Image.open(path).convert('RGB'))
    Image.fromarray(rgb).save(path)
    return path


def test_rgb_val_masks_fail_when_the_dataset_is_built(tmp_path):
    root = str(tmp_path / 'toy')
    make_toy_voc(root, num_train=4, num_val=4, size_range=(64, 64), seed=0)
    path = _rgb_mask(root, 'val.txt')
    with pytest.raises(ValueError) as err:
        DATASETS.build(dict(
            type='WSSSToyDataset', data_root=root, test_mode=True,
            ann_file='ImageSets/Segmentation/val.txt',
            cls_labels_file='cls_labels.npy',
            data_prefix=dict(img_path='JPEGImages',
                             seg_map_path='SegmentationClass')))
    assert path in str(err.value) and 'RGB' in str(err.value)
    assert 'check_dataset.py' in str(err.value)


def test_check_dataset_lists_every_bad_file(tmp_path):
    root = str(tmp_path / 'toy')
    make_toy_voc(root, num_train=6, num_val=4, size_range=(64, 96), seed=0)
    train_ids = open(osp.join(root, 'ImageSets', 'Segmentation',
                              'train.txt')).read().split()
    val_ids = open(osp.join(root, 'ImageSets', 'Segmentation',
                            'val.txt')).read().split()
    truncated = osp.join(root, 'JPEGImages', train_ids[0] + '.jpg')
    data = open(truncated, 'rb').read()
    open(truncated, 'wb').write(data[:len(data) // 2])
    corrupt = osp.join(root, 'JPEGImages', val_ids[2] + '.jpg')
    data = open(corrupt, 'rb').read()
    mid = len(data) // 2  # junk in the entropy-coded data
    open(corrupt, 'wb').write(data[:mid] + b'\xff\xd0' + bytes(7) +
                              data[mid:])
    rgb = _rgb_mask(root, 'val.txt', 1)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f'''
_base_ = [{osp.join(REPO, 'configs', 'baseline', 'cam_tiny_toy.py')!r}]
train_dataloader = dict(dataset=dict(data_root={root!r}))
val_dataloader = dict(dataset=dict(data_root={root!r}))
test_dataloader = val_dataloader
val_cfg = dict(extra_evals=[])
''')
    report = str(tmp_path / 'report.json')
    proc = subprocess.run(
        [sys.executable, 'tools/check_dataset.py', str(cfg), '--workers',
         '2', '--out', report], cwd=REPO, env=ENV, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    bad = {b['file']: b for r in json.load(open(report)).values()
           for b in r['bad']}
    assert set(bad) == {truncated, corrupt, rgb}
    assert 'truncated' in ' '.join(bad[truncated]['problems'])
    assert 'Corrupt JPEG data' in ' '.join(bad[corrupt]['problems'])
    assert 'RGB PNG' in ' '.join(bad[rgb]['problems'])
    assert '3 bad file(s)' in proc.stdout


# ------------------------------------------------------------ config keys
@pytest.mark.parametrize('where,key,close', [
    ('train_cfg', 'warmup_iter', 'warmup_iters'),
    ('test_cfg', 'bg_threshold', 'bg_thr'),
])
def test_unknown_cfg_keys_are_refused(where, key, close):
    cfg = tiny_cam_model_cfg()
    cfg[where] = dict(cfg[where], **{key: 1})
    with pytest.raises(KeyError) as err:
        MODELS.build(cfg)
    msg = str(err.value)
    assert repr(key) in msg and f'did you mean {close!r}' in msg
    assert 'known:' in msg


def _tiny_cosa(**kw):
    cfg = tiny_cam_model_cfg()
    cfg.update(type='CoSA', **kw)
    return cfg


@pytest.mark.parametrize('kw,close', [
    (dict(raw=dict(temprature=0.1)), 'temperature'),
    (dict(train_cfg=dict(csc_confidance=0.9)), 'csc_confidence'),
    (dict(test_cfg=dict(predict_nett='on')), 'predict_net'),
])
def test_unknown_cosa_keys_are_refused(kw, close):
    with pytest.raises(KeyError, match=f'did you mean {close!r}'):
        MODELS.build(_tiny_cosa(**kw))


def test_nested_and_mmseg_keys():
    cfg = tiny_cam_model_cfg()
    cfg['test_cfg'] = dict(mode='whole', crop_size=(64, 64), stride=(32, 32),
                           scales=(1.0, ), crf=dict(iterations=2))
    MODELS.build(cfg)  # mmseg's own test_cfg keys stay accepted
    cfg['test_cfg']['crf'] = dict(iteration=2)
    with pytest.raises(KeyError, match="did you mean 'iterations'"):
        MODELS.build(cfg)
    apc = dict(type='APC',
               data_preprocessor=cfg['data_preprocessor'],
               backbone=dict(TINY_VIT),
               patch_head=dict(type='PatchClassifierHead', in_channels=32,
                               num_classes=4),
               decode_head=None, train_cfg=dict(par=dict(num_iters=3)))
    with pytest.raises(KeyError, match="did you mean 'num_iter'"):
        MODELS.build(apc)


# ------------------------------------------------------------ CoSA loading
def test_cosa_from_a_cam_baseline_checkpoint_copies_on_into_an(tmp_path):
    torch.manual_seed(1)
    cam = MODELS.build(tiny_cam_model_cfg())
    cam.init_weights()
    path = str(tmp_path / 'cam.pth')
    torch.save(dict(state_dict=cam.state_dict(), meta=dict()), path)
    cosa = MODELS.build(_tiny_cosa())
    cosa.init_weights()  # AN = a copy of the (random) ON
    logger = MMLogger.get_instance('cosa_load_test', log_level='INFO')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    load_checkpoint(cosa, path, logger=logger)
    logger.removeHandler(handler)
    for name, value in cam.state_dict().items():
        assert torch.equal(cosa.state_dict()[name], value), name
        an = cosa.assignment_net.state_dict()[name]
        assert torch.equal(an, value), name
    # a checkpoint that has AN keeps its own AN
    cosa.update_assignment_net(momentum=0.5)
    with torch.no_grad():
        cosa.assignment_net['cam_head'].classifier.weight.add_(1.0)
    path2 = str(tmp_path / 'cosa.pth')
    torch.save(dict(state_dict=cosa.state_dict(), meta=dict()), path2)
    other = MODELS.build(_tiny_cosa())
    load_checkpoint(other, path2)
    for k, v in cosa.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k


# ------------------------------------------------------------ warnings
def test_frozen_parameters_are_summarised_not_listed():
    cosa = MODELS.build(_tiny_cosa())
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
            type='TrainableOnlyOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                type='OptimWrapper',
                optimizer=dict(type='AdamW', lr=1e-3)),
            paramwise_cfg=dict(custom_keys={'cam_head': dict(
                lr_mult=2.0)})))(cosa)
    finally:
        logger.removeHandler(handler)
    text = [r.getMessage() for r in records]
    assert not [t for t in text if 'requires_grad=False' in t]
    frozen = sum(1 for p in cosa.parameters() if not p.requires_grad)
    assert any(f'{frozen} parameters without gradient left out '
               '(assignment_net: ' in t for t in text), text


# ------------------------------------------------------------ NaN
def _fake_runner(model, optim_wrapper=None, it=4):
    return types.SimpleNamespace(model=model, optim_wrapper=optim_wrapper,
                                 iter=it)


def test_non_finite_hook_by_hand():
    model = torch.nn.Linear(2, 2)
    hook = NonFiniteCheckHook(amp_patience=3)
    runner = _fake_runner(model)
    finite = dict(loss=torch.tensor(1.0), loss_cls=torch.tensor(1.0))
    hook.after_train_iter(runner, 0, outputs=finite)
    with pytest.raises(FloatingPointError,
                       match=r'iteration 5 \(loss=nan, loss_cls=nan\)'):
        hook.after_train_iter(runner, 0, outputs=dict(
            loss=torch.tensor(float('nan')),
            loss_cls=torch.tensor(float('nan')),
            loss_seg=torch.tensor(0.5)))
    # mixed precision: the scaler skips inf steps, weights stay finite
    amp = AmpOptimWrapper.__new__(AmpOptimWrapper)
    runner = _fake_runner(model, amp)
    inf = dict(loss=torch.tensor(float('inf')))
    hook.after_train_iter(runner, 0, outputs=inf)
    hook.after_train_iter(runner, 0, outputs=inf)
    hook.after_train_iter(runner, 0, outputs=finite)  # resets the count
    hook.after_train_iter(runner, 0, outputs=inf)
    hook.after_train_iter(runner, 0, outputs=inf)
    with pytest.raises(FloatingPointError, match='non-finite loss'):
        hook.after_train_iter(runner, 0, outputs=inf)
    # non-finite weights stop the run even with AMP, and their checkpoint
    # is refused
    with torch.no_grad():
        model.weight[0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='non-finite weights'):
        NonFiniteCheckHook().after_train_iter(runner, 0, outputs=finite)
    with pytest.raises(FloatingPointError, match='weight'):
        hook.before_save_checkpoint(runner, dict(
            state_dict=model.state_dict()))


NAN_HOOK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class PoisonHook(Hook):
    """Puts a NaN into one weight before iteration 4 on one rank."""

    def __init__(self, rank=0):
        self.rank = rank

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == 4 and get_rank() == self.rank:
            model = getattr(runner.model, 'module', runner.model)
            with torch.no_grad():
                model.cam_head.classifier.weight[0, 0] = float('nan')
'''


def _poisoned_cfg(tmp_path, toy_root, rank):
    (tmp_path / 'wsss_poison_hook.py').write_text(NAN_HOOK)
    base = write_cfg(tmp_path, toy_root, max_iters=8, name='base.py')
    cfg = tmp_path / 'poisoned.py'
    cfg.write_text(f'''
_base_ = [{base!r}]
custom_imports = dict(imports=['mmseg_wsss', 'wsss_poison_hook'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='PoisonHook', rank={rank})]
''')
    return str(cfg)


def test_nan_stops_training_before_the_checkpoint(tmp_path, toy_root):
    cfg = _poisoned_cfg(tmp_path, toy_root, rank=0)
    work = str(tmp_path / 'w')
    env = dict(ENV, PYTHONPATH=f'{tmp_path}:{REPO}')
    proc = subprocess.run([sys.executable, 'tools/train.py', cfg,
                           '--work-dir', work], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'FloatingPointError: non-finite loss at iteration 4' in out
    assert 'loss_cls=nan' in out
    assert not osp.exists(osp.join(work, 'iter_4.pth'))  # interval 4


def test_nan_on_one_rank_stops_both(tmp_path, toy_root):
    """A NaN on rank 1 only: both ranks stop at the same iteration (rank 0
    does not hang in its next all-reduce) and nothing is saved."""
    cfg = _poisoned_cfg(tmp_path, toy_root, rank=1)
    work = str(tmp_path / 'dist')
    env = dict(ENV, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=f'{tmp_path}:{REPO}')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', work],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert out.count('non-finite') >= 2  # both ranks say why
    assert 'on another rank' in out  # rank 0 only saw the flag
    assert not osp.exists(osp.join(work, 'iter_4.pth'))


# ------------------------------------------------------------ --resume
def test_resume_without_checkpoint_says_so(tmp_path, toy_root):
    cfg = write_cfg(tmp_path, toy_root, max_iters=2)
    work = str(tmp_path / 'w')
    out = run([sys.executable, 'tools/train.py', cfg, '--work-dir', work,
               '--resume'])
    assert f'--resume: no checkpoint in {work}' in out
    assert 'training from scratch' in out and 'None' not in \
        out.split('--resume: no checkpoint')[0][-200:]
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', cfg, '--work-dir', work,
         '--resume', str(tmp_path / 'nope.pth')], cwd=REPO, env=ENV,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'nope.pth: no such checkpoint file' in proc.stderr
