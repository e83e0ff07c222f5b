"""CLIP-ES (the CLIP line, step 3): the pure functions against hand-worked
examples, the batched softmax-GradCAM against the per-class loop, and the
training-free model as a pseudo-label source."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from PIL import Image

from mmseg_wsss.models.pseudo_labels import (box_mask, caa_refine,
                                             clip_es_scores, minmax01,
                                             sinkhorn_affinity)

from .conftest import REPO
from .test_runner import run

pytest.importorskip('open_clip', reason='open_clip is in '
                    'requirements/optional.txt (the text tool needs it)')


def test_sinkhorn_2x2_by_hand():
    a = [[1.0, 2.0], [3.0, 4.0]]
    t = [row[:] for row in a]
    for _ in range(3):  # divide by the column sums, then the row sums
        cols = [t[0][j] + t[1][j] for j in range(2)]
        t = [[t[i][j] / cols[j] for j in range(2)] for i in range(2)]
        rows = [t[i][0] + t[i][1] for i in range(2)]
        t = [[t[i][j] / rows[i] for j in range(2)] for i in range(2)]
    s = [[(t[i][j] + t[j][i]) / 2 for j in range(2)] for i in range(2)]
    sq = [[sum(s[i][k] * s[k][j] for k in range(2)) for j in range(2)]
          for i in range(2)]
    got = sinkhorn_affinity(torch.tensor(a))
    torch.testing.assert_close(got, torch.tensor(sq), atol=1e-6, rtol=0)
    # after the first round the values are 3/7, 4/7 / 9/17, 8/17
    assert abs(sq[0][0] + sq[0][1] - 1) < 0.02  # nearly stochastic
    torch.testing.assert_close(got, got.t())


def test_box_on_a_3x4_map_and_the_last_row_column_rule():
    cam = torch.tensor([[0.0, 0.0, 0.0, 0.0],
                        [0.3, 0.0, 0.0, 0.9],
                        [0.0, 0.0, 0.8, 1.0]])
    # floor(255 cam) > int(0.4 * 255) = 102: (1,3) 229, (2,2) 204, (2,3)
    # 255 -- one 8-connected part, box rows 1-2, columns 2-3; (1,0) 76 is
    # below the threshold
    full = box_mask(cam, 0.4, last_rule=False)
    expect = torch.zeros(3, 4)
    expect[1:3, 2:4] = 1
    assert torch.equal(full, expect)
    ref = box_mask(cam, 0.4, last_rule=True)  # ends clipped to W-1 / H-1
    expect = torch.zeros(3, 4)
    expect[1, 2] = 1
    assert torch.equal(ref, expect)
    # two parts: two boxes; nothing above the threshold: no box
    cam2 = torch.tensor([[1.0, 0.0, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 0.9]])
    two = box_mask(cam2, 0.4, last_rule=False)
    assert two.sum() == 2 and two[0, 0] == 1 and two[2, 3] == 1
    assert box_mask(torch.zeros(3, 4), 0.4).sum() == 0


def test_caa_refine_minmax_and_background_by_hand():
    cam = torch.tensor([[0.2, 1.0], [0.0, 0.6]])
    box = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    trans = torch.tensor([[0.5, 0.5, 0.0, 0.0],
                          [0.5, 0.5, 0.0, 0.0],
                          [0.0, 0.0, 1.0, 0.0],
                          [0.0, 0.0, 0.0, 1.0]])
    # refined = T (B * cam) = [0.6, 0.6, 0, 0.6] -> min-max [1, 1, 0, 1]
    got = caa_refine(cam, trans, box)
    torch.testing.assert_close(got, torch.tensor([[1.0, 1.0], [0.0, 1.0]]),
                               atol=1e-6, rtol=0)
    x = torch.tensor([[[2.0, 4.0], [6.0, 10.0]]])
    torch.testing.assert_close(minmax01(x), torch.tensor(
        [[[0.0, 0.25], [0.5, 1.0]]]), atol=1e-6, rtol=0)
    cams = torch.tensor([[[0.2, 0.9]], [[0.5, 0.1]]])
    torch.testing.assert_close(
        clip_es_scores(cams, 2.0)[0], torch.tensor([[0.25, 0.01]]))


@pytest.fixture(scope='module')
def text_bank(tmp_path_factory):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'clip_text_tool', osp.join(REPO, 'tools', 'clip_text_embeddings.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    words = tmp_path_factory.mktemp('text') / 'toy.txt'
    words.write_text('cat\ndog\ncow\ncar\n')
    out = str(words.parent / 'toy_text.pth')
    tool.main(['--random-init', '0', '--classes', str(words), '--bg', 'voc',
               '--out', out])
    return out


def _clip_es(text_bank, **test_cfg):
    return MODELS.build(dict(
        type='CLIPES',
        data_preprocessor=dict(type='WSSSDataPreprocessor',
                               mean=[122.77, 116.75, 104.09],
                               std=[68.50, 66.63, 70.32], bgr_to_rgb=True),
        backbone=dict(type='CLIPViT', arch=None, img_size=64, patch_size=8,
                      embed_dims=32, num_layers=4, num_heads=2,
                      proj_dims=512, aux_layer=-2),
        text_embeddings=text_bank,
        test_cfg=dict(dict(caa_blocks=3), **test_cfg)))


def _sample(labels, h=40, w=56):
    s = SegDataSample()
    s.gt_img_labels = torch.tensor(labels, dtype=torch.float)
    s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
    return s


def test_batched_gradcam_equals_the_per_class_loop(text_bank):
    """The GradCAMs of all present classes from one backward equal the
    reference's one backward per class (before the box thresholds, which
    a 1e-6 difference can flip at a boundary)."""
    torch.manual_seed(0)
    model = _clip_es(text_bank, refine=False)
    model.init_weights()
    img = torch.randn(1, 3, 48, 64)
    a = model.image_maps(img, [0, 2, 3])
    model.test_cfg['batch_classes'] = False
    b = model.image_maps(img, [0, 2, 3])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert a.shape == (3, 6, 8)
    assert float(a.min()) == 0.0 and abs(float(a.amax((1, 2)).min()) - 1) \
        < 1e-5  # each map min-max scaled
    # the softmax over [present classes; background words]: the same class
    # gets another map when the other present classes change
    alone = model.image_maps(img, [0])
    assert not torch.allclose(alone[0], a[0], atol=1e-3)
    model.test_cfg.update(refine=True, batch_classes=True)
    refined = model.image_maps(img, [0, 2, 3])
    assert refined.shape == (3, 6, 8) and float(refined.max()) <= 1.0
    assert not torch.allclose(refined, a)  # the refinement changes them


def test_predict_maps_only_present_classes_at_full_size(text_bank):
    torch.manual_seed(0)
    model = _clip_es(text_bank)
    model.init_weights()
    x = torch.randn(2, 3, 40, 56)  # not multiples of 8: resized inside
    out = model.predict(x, [_sample([1, 0, 0, 1]), _sample([0, 1, 0, 0])])
    assert out[0].cams.data.shape == (4, 40, 56)
    assert out[0].cams.data[[1, 2]].abs().sum() == 0
    assert set(out[0].pred_sem_seg.data.unique().tolist()) <= {0, 1, 4}
    assert set(out[1].pred_sem_seg.data.unique().tolist()) <= {0, 2}
    with pytest.raises(ValueError, match='image-level'):
        model.predict(x, [SegDataSample(), SegDataSample()])
    with pytest.raises(RuntimeError, match='training-free'):
        model.loss(x, [])


def test_clip_es_exports_pseudo_labels(tmp_path, toy_root, text_bank):
    """tools/gen_pseudo_labels.py with a CLIP-ES config, checkpoint 'none'
    (the CLIP weights come from the config): masks of the present classes,
    scored against the toy masks."""
    torch.manual_seed(0)
    model = _clip_es(text_bank)
    model.init_weights()
    clip = str(tmp_path / 'clip.pth')
    bb = model.backbone.state_dict()
    # the backbone's own keys back in OpenAI layout would need a converter;
    # a CLIPViT-layout file loads through the same loader as a state dict
    torch.save(bb, clip)
    cfg = tmp_path / 'clip_es_toy.py'
    cfg.write_text(f'''
_base_ = [{osp.join(REPO, 'configs', 'clip_es', 'clip_es_vitb16_voc.py')!r}]
model = dict(
    backbone=dict(_delete_=True, type='CLIPViT', arch=None, img_size=64,
                  patch_size=8, embed_dims=32, num_layers=4, num_heads=2,
                  proj_dims=512, aux_layer=-2),
    text_embeddings={text_bank!r},
    test_cfg=dict(caa_blocks=3))
train_dataloader = dict(dataset=dict(
    _delete_=True, type='WSSSToyDataset', data_root={toy_root!r},
    ann_file='ImageSets/Segmentation/train.txt',
    cls_labels_file='cls_labels.npy',
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    pipeline={{{{_base_.train_pipeline}}}}))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='WSSSToyDataset', data_root={toy_root!r},
    ann_file='ImageSets/Segmentation/train.txt',
    cls_labels_file='cls_labels.npy',
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    test_mode=True, pipeline={{{{_base_.test_pipeline}}}}))
''')
    out = str(tmp_path / 'pl')
    log = run([sys.executable, 'tools/gen_pseudo_labels.py', str(cfg), 'none',
               '--out', out, '--source', 'seg', '--limit', '6', '--workers',
               '0', '--cfg-options', f'model.backbone.pretrained={clip}'])
    assert 'pseudo-label mIoU' in log
    summary = json.load(open(osp.join(out, 'summary.json')))
    assert summary['num_images'] == 6 and 'mIoU' in summary
    labels = np.load(osp.join(toy_root, 'cls_labels.npy'),
                     allow_pickle=True).item()
    ids = open(osp.join(out, 'ImageSets/Segmentation/train.txt')).read(
    ).split()
    for i in ids:
        png = np.array(Image.open(osp.join(out, 'SegmentationClass',
                                           i + '.png')))
        present = {0} | {k + 1 for k in np.flatnonzero(labels[i])}
        assert set(np.unique(png).tolist()) <= present, i


def test_missing_text_file_names_the_command(tmp_path):
    from mmseg_wsss.models.utils import load_text_bank
    with pytest.raises(FileNotFoundError, match='clip_text_embeddings.py'):
        load_text_bank(str(tmp_path / 'nope.pth'))
