"""The stock mmengine Runner path: tools/train.py, --resume, tools/test.py,
tools/dist_train.sh on CPU."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from .conftest import REPO, free_port

ENV = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')


def write_cfg(tmp_path, toy_root, max_iters, warmup=2, name='cfg.py',
              val_interval=None, num_workers=0):
    """cam_tiny_toy.py on the test's toy set, tiny and fast."""
    base = osp.join(REPO, 'configs', 'baseline', 'cam_tiny_toy.py')
    loader = ("dict(num_workers=0, persistent_workers=False, "
              "dataset=dict(data_root=%r))" % toy_root)
    text = f'''
_base_ = [{base!r}]
train_dataloader = dict(batch_size=4, num_workers={num_workers},
                        persistent_workers=False,
                        dataset=dict(data_root={toy_root!r}))
val_dataloader = {loader}
test_dataloader = val_dataloader
val_cfg = dict(extra_evals=[dict(
    name='train',
    dataloader=dict(
        batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler',
                                                  shuffle=False),
        dataset=dict(type='WSSSToyDataset', data_root={toy_root!r},
                     ann_file='ImageSets/Segmentation/train.txt',
                     cls_labels_file='cls_labels.npy',
                     data_prefix=dict(img_path='JPEGImages',
                                      seg_map_path='SegmentationClass'),
                     test_mode=True, indices=6,
                     pipeline={{{{_base_.test_pipeline}}}})),
    evaluator=dict(type='PseudoMaskMetric'))])
model = dict(train_cfg=dict(warmup_iters={warmup}, cam_scales=(1.0, )))
train_cfg = dict(max_iters={max_iters},
                 val_interval={val_interval or max_iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                        begin=0, end=20)]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=4, max_keep_ckpts=5))
'''
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(args, timeout=600):
    proc = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def scalars(work_dir):
    """Rows of mmengine's scalars.json of the newest run in work_dir."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    return [json.loads(line) for line in open(files[-1])]


def test_train_stop_resume_continue_and_test(tmp_path, toy_root):
    work = str(tmp_path / 'work')
    cfg4 = write_cfg(tmp_path, toy_root, max_iters=4, name='cfg4.py')
    cfg8 = write_cfg(tmp_path, toy_root, max_iters=8, name='cfg8.py')
    run([sys.executable, 'tools/train.py', cfg4, '--work-dir', work])
    ck4 = torch.load(osp.join(work, 'iter_4.pth'), weights_only=False)
    assert ck4['meta']['iter'] == 4
    first = scalars(work)

    out = run([sys.executable, 'tools/train.py', cfg8, '--work-dir', work,
               '--resume'])
    assert 'resumed epoch: 0, iter: 4' in out
    ck8 = torch.load(osp.join(work, 'iter_8.pth'), weights_only=False)
    assert ck8['meta']['iter'] == 8
    # optimizer state continued: AdamW took 8 steps (not 4); the decode
    # head's parameters got no gradient in the 2 warm-up iterations
    steps = {int(s['step']) for s in ck8['optimizer']['state'].values()}
    assert steps == {8, 8 - 2}
    # the LR schedule continued where it stopped
    assert ck8['param_schedulers'][0]['last_step'] == 8
    second = scalars(work)
    train_rows = [r for r in second if 'loss' in r]
    assert [r['step'] for r in train_rows] == [5, 6, 7, 8]
    lr4 = [r for r in first if 'loss' in r][-1]['lr']
    assert train_rows[0]['lr'] > lr4  # linear warm-up, not restarted
    # the logged loss history continued across the resume: 4 + 4 values
    hist = ck8['message_hub']['log_scalars']['train/loss']
    assert len(hist.data[0]) == 8
    assert hist.data[0][:4].tolist() == ck4['message_hub']['log_scalars'][
        'train/loss'].data[0].tolist()
    val = [r for r in second if 'mIoU' in r]
    assert val and 'train/cam/mIoU' in val[-1]
    assert 'label_masked/mIoU' in val[-1]

    # tools/test.py loads the torch-2.13 checkpoint and evaluates it
    out = run([sys.executable, 'tools/test.py', cfg8,
               osp.join(work, 'iter_8.pth'), '--work-dir',
               str(tmp_path / 'test')])
    assert 'Load checkpoint from' in out and 'mIoU' in out


def test_load_from_and_checkpoint_compat(tmp_path, toy_root):
    """mmengine's loader reads a runner checkpoint with weights_only=True
    (allow-listed globals) -- no fallback warning needed."""
    import warnings

    from mmengine.runner import CheckpointLoader
    work = str(tmp_path / 'w')
    cfg = write_cfg(tmp_path, toy_root, max_iters=4)
    run([sys.executable, 'tools/train.py', cfg, '--work-dir', work])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ck = CheckpointLoader.load_checkpoint(osp.join(work, 'iter_4.pth'))
    assert 'message_hub' in ck and 'state_dict' in ck
    out = run([sys.executable, 'tools/train.py', cfg, '--work-dir',
               str(tmp_path / 'w2'), '--cfg-options',
               f'load_from={osp.join(work, "iter_4.pth")}'])
    assert 'Load checkpoint from' in out


def test_dist_train_two_cpu_processes(tmp_path, toy_root):
    work = str(tmp_path / 'dist')
    cfg = write_cfg(tmp_path, toy_root, max_iters=4)
    env = dict(ENV, PYTHON=sys.executable, PORT=str(free_port()))
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', cfg, '2', '--work-dir', work],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'Distributed launcher: pytorch' in out or 'world_size: 2' in out \
        or 'World size: 2' in out
    assert osp.isfile(osp.join(work, 'iter_4.pth'))


def metrics_of(out):
    """The metrics of the final line mmengine prints after a test run
    (timings left out)."""
    lines = [ln for ln in out.splitlines() if 'mIoU:' in ln]
    assert lines, out[-3000:]
    found = re.findall(r'([\w/]+): ([\d.]+)', lines[-1])
    return {k: float(v) for k, v in found if 'time' not in k}


def test_dist_test_two_cpu_processes_equals_one(tmp_path, toy_root):
    """tools/dist_test.sh on CPU: two ranks split the val set and their
    metrics are gathered -- the same numbers as one process -- and both
    ranks leave cleanly (no abort at exit)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = write_cfg(tmp_path, toy_root, max_iters=4)
    torch.manual_seed(0)  # weights made in-process: no training run needed
    model = MODELS.build(Config.fromfile(cfg).model)
    model.init_weights()
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    one = run([sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir',
               str(tmp_path / 't1')])
    env = dict(ENV, PYTHON=sys.executable, PORT=str(free_port()))
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', cfg, ckpt, '2', '--work-dir',
         str(tmp_path / 't2')],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    two = proc.stdout + proc.stderr
    assert proc.returncode == 0, two[-4000:]
    assert 'terminate called' not in two
    assert metrics_of(two) == metrics_of(one)


DUMP_HOOK = '''
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class DumpRankStateHook(Hook):
    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \\
            else runner.model
        torch.save(
            dict(an=model.assignment_net.state_dict(),
                 on=model.backbone.state_dict(),
                 low=float(model.dynamic_threshold.low),
                 high=float(model.dynamic_threshold.high),
                 hist=model.dynamic_threshold.hist.clone(),
                 broadcast=getattr(runner.model, 'broadcast_buffers', None),
                 updates=int(model.an_updates)),
            f'{runner.work_dir}/rank{get_rank()}.pth')
'''


def test_cosa_two_cpu_processes_keep_an_and_thresholds_identical(
        tmp_path, toy_root):
    """tools/dist_train.sh with CoSA past the warm-up: DDP keeps ON in sync,
    the EMA hook keeps AN in sync, the thresholds are one global statistic:
    identical on both ranks while each rank queues its own samples (DDP does
    not broadcast the buffers)."""
    (tmp_path / 'wsss_dump_hook.py').write_text(DUMP_HOOK)
    cfg = write_cosa_cfg(tmp_path, toy_root, max_iters=6, extra='''
custom_imports = dict(imports=['mmseg_wsss', 'wsss_dump_hook'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='AssignmentNetEMAHook'),
                dict(type='DumpRankStateHook')]
''')
    work = str(tmp_path / 'dist')
    env = dict(ENV, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=f'{tmp_path}:{REPO}')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', work],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'loss_c2s' in out and 'tau_low' in out  # past the warm-up
    r0 = torch.load(osp.join(work, 'rank0.pth'), weights_only=False)
    r1 = torch.load(osp.join(work, 'rank1.pth'), weights_only=False)
    assert r0['updates'] == r1['updates'] == 6
    assert r0['low'] == r1['low'] and r0['high'] == r1['high']
    assert (r0['low'], r0['high']) != (0.25, 0.7)  # the thresholds moved
    assert r0['broadcast'] is False  # DDP leaves the queues alone
    assert not torch.equal(r0['hist'], r1['hist'])  # each rank its own
    assert int(r0['hist'].sum()) > 0 and int(r1['hist'].sum()) > 0
    for k, v in r0['an'].items():
        assert torch.equal(v, r1['an'][k]), k
    for k, v in r0['on'].items():
        assert torch.equal(v, r1['on'][k]), k
    # and AN really is an EMA, not a copy of ON
    assert not torch.equal(r0['an']['backbone.cls_token'],
                           r0['on']['cls_token'])


def write_cosa_cfg(tmp_path, toy_root, max_iters, extra='', name='cosa.py',
                   **kw):
    """The CoSA deltas of configs/cosa/cosa_tiny_toy.py on the small test
    base (drop path 0.1 as in the tiny config), plus ``extra`` lines."""
    base = write_cfg(tmp_path, toy_root, max_iters=max_iters, warmup=2,
                     name='base_' + name, **kw)
    cfg = tmp_path / name
    cfg.write_text(f'''
_base_ = [{base!r}]
model = dict(type='CoSA', momentum=0.9,
             dynamic_threshold=dict(queue_size=5000),
             loss_s2c=dict(type='SegToCAMLoss', loss_weight=0.05),
             loss_csc=dict(type='ContrastiveSeparationLoss',
                           loss_weight=0.1))
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=(128, 128)),
    dict(type='StrongPhotometricView'),
    dict(type='PackWSSSInputs')]))
custom_hooks = [dict(type='AssignmentNetEMAHook')]
optim_wrapper = dict(constructor='TrainableOnlyOptimWrapperConstructor')
''' + extra)
    return str(cfg)


def flat_tensors(obj, prefix=''):
    """Every tensor of a nested dict/list, keyed by its path."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat_tensors(v, f'{prefix}.{k}'))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flat_tensors(v, f'{prefix}.{i}'))
    return out


@pytest.mark.parametrize('workers', [0, 2])
def test_cosa_resume_is_bit_exact(tmp_path, toy_root, workers):
    """Straight 8 iterations vs 4 + --resume 4: CoSA past its warm-up, drop
    path 0.1, validation at iteration 4 of the straight run only, data in
    the main process (workers=0) or in loader workers. Every tensor of the
    final checkpoint -- ON, assignment_net.*, the dynamic-threshold buffers,
    the optimizer state -- is equal bit for bit. Without the RNG hook the
    resumed run differs (drop path draws other masks)."""
    cfg = write_cosa_cfg(tmp_path, toy_root, max_iters=8,
                         val_interval=4, num_workers=workers)
    straight, resumed, control = (str(tmp_path / n) for n in
                                  ('straight', 'resumed', 'control'))
    run([sys.executable, 'tools/train.py', cfg, '--work-dir', straight])
    ck4 = osp.join(straight, 'iter_4.pth')
    saved = torch.load(ck4, weights_only=True)['rng_states']
    assert saved['world_size'] == 1 and len(saved['states']) == 1
    out = run([sys.executable, 'tools/train.py', cfg, '--work-dir', resumed,
               '--resume', ck4])
    assert 'RNG states restored from the checkpoint' in out
    assert 'loss_c2s' in out  # CoSA's co-training ran after the resume
    a = torch.load(osp.join(straight, 'iter_8.pth'), weights_only=True)
    b = torch.load(osp.join(resumed, 'iter_8.pth'), weights_only=True)
    from mmengine.config import Config
    assert Config.fromfile(cfg).model.backbone.drop_path_rate == 0.1
    ta = flat_tensors({k: a[k] for k in ('state_dict', 'optimizer')})
    tb = flat_tensors({k: b[k] for k in ('state_dict', 'optimizer')})
    assert ta.keys() == tb.keys()
    names = ' '.join(ta)
    assert 'assignment_net.backbone' in names
    assert 'dynamic_threshold.queue' in names and '.exp_avg_sq' in names
    assert int(a['state_dict']['an_updates']) == 8
    differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not differ, differ[:5]

    if workers:
        return
    # the control: the same resume without restoring the RNG states
    run([sys.executable, 'tools/train.py', cfg, '--work-dir', control,
         '--resume', ck4, '--cfg-options', 'default_hooks.rng_state=None'])
    c = torch.load(osp.join(control, 'iter_8.pth'), weights_only=True)
    tc = flat_tensors({k: c[k] for k in ('state_dict', 'optimizer')})
    assert sum(not torch.equal(ta[k], tc[k]) for k in ta) > len(ta) // 2


def test_test_time_crf_in_workers_equals_serial(tmp_path, toy_root):
    """tools/test.py's WSSSTestLoop refines with DenseCRF in 2 worker
    processes: the predicted masks are those of the serial CRF inside
    predict (and differ from no CRF, so the comparison can fail)."""
    import numpy as np
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmseg.registry import MODELS
    from PIL import Image
    cfg_path = write_cfg(tmp_path, toy_root, max_iters=4)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(cfg_path).model)
    model.init_weights()
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)

    def predict(name, loop, crf):
        cfg = Config.fromfile(cfg_path)
        cfg.work_dir = str(tmp_path / name)
        cfg.experiment_name = name
        cfg.load_from = ckpt
        cfg.test_cfg = loop
        cfg.model.test_cfg.crf = crf
        cfg.test_dataloader.batch_size = 3  # padded batches
        cfg.model.data_preprocessor.test_cfg = dict(size_divisor=8)
        cfg.test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'],
                                  output_dir=str(tmp_path / name / 'png'))
        metrics = Runner.from_cfg(cfg).test()
        pngs = sorted(glob.glob(str(tmp_path / name / 'png' / '*.png')))
        return metrics, {osp.basename(p): np.array(Image.open(p))
                         for p in pngs}

    crf = dict(iterations=3, bi_rgb_std=10)
    serial = predict('serial', dict(type='TestLoop'), crf)
    pooled = predict('pooled', dict(type='WSSSTestLoop', crf_workers=2,
                                    max_pending=1), crf)
    plain = predict('plain', dict(type='WSSSTestLoop', crf_workers=2), None)
    assert len(serial[1]) == 12 and serial[1].keys() == pooled[1].keys()
    for name in serial[1]:
        assert np.array_equal(serial[1][name], pooled[1][name]), name
    assert serial[0] == pooled[0]
    assert any(not np.array_equal(serial[1][n], plain[1][n])
               for n in serial[1]), 'the CRF changed nothing'
