import hashlib
import os
import os.path as osp
import subprocess
import sys

import numpy as np

from mmseg_wsss.datasets import load_cls_labels, make_toy_voc
from mmseg_wsss.datasets.toy import TOY_CLASSES

from .conftest import REPO


def _digest(root):
    h = hashlib.sha1()
    for sub in ('JPEGImages/toy_train_00003.jpg',
                'SegmentationClass/toy_val_00001.png',
                'ImageSets/Segmentation/train.txt'):
        h.update(open(osp.join(root, sub), 'rb').read())
    return h.hexdigest()


def test_toy_generator_is_deterministic(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    make_toy_voc(a, 8, 3, (64, 80), seed=5)
    make_toy_voc(b, 8, 3, (64, 80), seed=5)
    assert _digest(a) == _digest(b)
    labels = load_cls_labels(osp.join(a, 'cls_labels.npy'))
    assert len(labels) == 11
    assert all(v.shape == (len(TOY_CLASSES) - 1, ) for v in labels.values())


def test_toy_set_has_context_and_multi_object(toy_root):
    labels = load_cls_labels(osp.join(toy_root, 'cls_labels.npy'))
    counts = np.array([v.sum() for v in labels.values()])
    assert (counts >= 2).any(), 'multi-object images'
    assert (counts == 0).any(), 'images with an empty label set'
    assert (counts == 1).any()


def test_make_cls_labels_matches_generator(toy_root, tmp_path):
    out = str(tmp_path / 'labels.npy')
    proc = subprocess.run(
        [sys.executable, 'tools/make_cls_labels.py',
         osp.join(toy_root, 'SegmentationClass'),
         osp.join(toy_root, 'ImageSets/Segmentation/train.txt'),
         osp.join(toy_root, 'ImageSets/Segmentation/val.txt'),
         '--num-classes', '4', '--out', out],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'wrote 52 label vectors' in proc.stdout
    made = load_cls_labels(out)
    ref = load_cls_labels(osp.join(toy_root, 'cls_labels.npy'))
    assert made.keys() == ref.keys()
    for k in ref:
        np.testing.assert_array_equal(made[k], ref[k])
    bad = subprocess.run(
        [sys.executable, 'tools/make_cls_labels.py',
         osp.join(toy_root, 'SegmentationClass'),
         osp.join(toy_root, 'ImageSets/Segmentation/train.txt'),
         '--num-classes', '2', '--out', out],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert 'outside 0..2' in bad.stderr


def test_convert_vit_weights_roundtrip(tmp_path):
    import torch

    from mmseg_wsss.models.backbones import WSSSViT
    src = WSSSViT(img_size=32, patch_size=8, embed_dims=32, num_layers=2,
                  num_heads=2, layer_scale_init=0.1, aux_layer=-1)
    src.init_weights()
    raw = {'model.' + k.replace('ls1.gamma', 'ls1.weight'): v
           for k, v in src.state_dict().items()}
    raw['model.head.weight'] = torch.zeros(3, 32)
    torch.save(raw, tmp_path / 'timm.pth')
    proc = subprocess.run(
        [sys.executable, 'tools/convert_vit_weights.py',
         str(tmp_path / 'timm.pth'), str(tmp_path / 'out.pth'),
         '--check-patch', '8'], cwd=REPO, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "'patch_size': 8" in proc.stdout
    assert "'num_layers': 2" in proc.stdout
    out = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert out.keys() == src.state_dict().keys()
    dst = WSSSViT(img_size=32, patch_size=8, embed_dims=32, num_layers=2,
                  num_heads=2, layer_scale_init=1.0, aux_layer=-1,
                  pretrained=str(tmp_path / 'out.pth'))
    dst.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


# ------------------------------------------------------------ GPU check
def _bash(args, **kw):
    return subprocess.run(['bash'] + args, cwd=REPO, capture_output=True,
                          text=True, timeout=120, **kw)


def test_gpu_check_plans_every_step_and_refuses_bad_arguments(tmp_path):
    """tools/gpu_check.sh --dry-run: the offline install (no index, wheels
    without deps, mmcv from its sdist through build_mmcv.sh, which hides the
    GPU), the three benchmarks at 448x448 batch 4 and both coco128 runs;
    bad arguments exit 2 with the reason."""
    out = _bash(['tools/gpu_check.sh', '--dry-run', '--pack-dir',
                 str(tmp_path / 'pack'), '--out', str(tmp_path / 'o'),
                 '--iters', '120'])
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert 'pip install -q --no-deps' in text
    assert 'tools/build_mmcv.sh' in text
    for cfg in ('cam_vitb_voc', 'cosa_vitb_voc', 'cosa_swin-b_voc'):
        assert f'{cfg}.py --device cuda --batch-size 4 --crop-size 448 448' \
            in text
    for cfg in ('weclip_vitb16_voc', 'excel_vitb16_voc'):
        assert f'{cfg}.py --device cuda --batch-size 4 --crop-size 320 320' \
            in text
    for cfg in ('cam_dinov2s_coco128_gpu', 'cosa_dinov2s_coco128_gpu'):
        assert f'{cfg}.py for 120 iterations' in text
    only = _bash(['tools/gpu_check.sh', '--dry-run', '--only', 'bench',
                  '--out', str(tmp_path / 'o')])
    assert 'benchmark.py' in only.stdout and 'pip' not in only.stdout
    for bad, why in ((['--iters', '0'], 'positive integer'),
                     (['--only', 'train'], 'install, bench or coco'),
                     (['--frobnicate'], 'unknown argument')):
        res = _bash(['tools/gpu_check.sh'] + bad)
        assert res.returncode == 2 and why in res.stderr, bad
    # without the pack, the install step says how to make it
    res = _bash(['tools/gpu_check.sh', '--only', 'install', '--pack-dir',
                 str(tmp_path / 'none'), '--out', str(tmp_path / 'o')])
    assert res.returncode == 1 and 'gpu_check.sh --pack' in res.stderr
    # build_mmcv.sh hides the GPU and patches C++20 for torch >= 2.14
    build = open(osp.join(REPO, 'tools', 'build_mmcv.sh')).read()
    assert 'CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0' in build
    assert 's/-std=c++17/-std=c++20/g' in build
    wh = _bash(['tools/make_wheelhouse.sh', '--dry-run', '--out',
                str(tmp_path / 'wh'), '--python-version', '3.12'])
    assert wh.returncode == 0
    assert '--python-version 3.12' in wh.stdout and \
        'mmcv==2.1.0' in wh.stdout and 'setuptools<70' in wh.stdout
    assert _bash(['tools/make_wheelhouse.sh', '--python-version',
                  'py3']).returncode == 2


def test_gpu_check_install_step_runs_offline(tmp_path):
    """The install step against an environment that already has
    everything: no index is touched (PIP_NO_INDEX), nothing is rebuilt,
    and it ends by importing the project."""
    wh = tmp_path / 'pack' / 'wheelhouse'
    wh.mkdir(parents=True)
    env = dict(os.environ, PIP_INDEX_URL='http://127.0.0.1:9/nowhere')
    res = _bash(['tools/gpu_check.sh', '--only', 'install', '--pack-dir',
                 str(tmp_path / 'pack'), '--out', str(tmp_path / 'o'),
                 '--python', sys.executable], env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert 'build_mmcv' not in res.stdout  # mmcv.ops already imports
    assert '[gpu_check] mmseg_wsss imports: mmcv 2.1.0' in res.stdout


def test_gpu_pack_assets_round_trip_and_summary(tmp_path):
    import json

    import torch
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import gpu_pack_assets as gpa
    finally:
        sys.path.pop(0)
    torch.save({'w': torch.tensor([1.0, 0.1]), 'n': torch.tensor([3])},
               tmp_path / 'w.pth')
    data = tmp_path / 'data'
    (data / 'JPEGImages').mkdir(parents=True)
    (data / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    (data / 'ImageSets' / 'Segmentation' / 'all.txt').write_text('a\n')
    from PIL import Image
    Image.new('RGB', (20, 10), (200, 10, 10)).save(data / 'JPEGImages' /
                                                   'a.jpg')
    gpa.pack(str(tmp_path / 'w.pth'), str(data), str(tmp_path / 'pack'))
    assert (tmp_path / 'pack' / 'coco128_voc' / 'ImageSets').is_dir()
    half = torch.load(tmp_path / 'pack' / gpa.WEIGHTS_NAME)
    assert half['w'].dtype == torch.float16 and half['n'].dtype == torch.long
    gpa.unpack(str(tmp_path / 'pack'), str(tmp_path / 'back.pth'))
    back = torch.load(tmp_path / 'back.pth')
    torch.testing.assert_close(back['w'], torch.tensor([1.0, 0.1]),
                               atol=1e-3, rtol=0)
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'bench_cosa.json').write_text(json.dumps(dict(
        device_name='H200', wsss=dict(step_s_median=0.5, peak_mem_mib=9e3),
        supervised=dict(step_s_median=0.25, peak_mem_mib=6e3),
        ratio=dict(reads='2.00x measured / 1.80x ideal', peak_mem=1.5))))
    (out / 'cam.log').write_text(
        'x - Iter(val) [97/97]    aAcc: 50.0000  mIoU: 12.3400  '
        'train/cam/mIoU: 31.5000  train/cam/bg_thr: 0.2500  time: 0.1\n')
    res = gpa.summary(str(out))
    assert res['bench']['cosa']['reads'].startswith('2.00x')
    assert res['coco128']['cam']['mIoU'] == 12.34
    assert res['coco128']['cam']['train/cam/bg_thr'] == 0.25
    assert json.load(open(out / 'summary.json')) == res
