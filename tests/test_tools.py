import hashlib
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
