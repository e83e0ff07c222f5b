import random

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS

from mmseg_wsss.datasets.transforms import (PHOTOMETRIC_OPS, PackWSSSInputs,
                                            RandomCropPad, RandomRescale,
                                            StrongPhotometricView)


def _results(h=20, w=30):
    img = np.random.RandomState(0).randint(0, 255, (h, w, 3), np.uint8)
    seg = np.zeros((h, w), np.uint8)
    seg[5:10, 5:10] = 2
    return dict(img=img, gt_seg_map=seg, seg_fields=[],
                img_labels=np.array([0, 1, 0], np.float32))


def test_crop_pad_valid_mask_marks_image_pixels():
    random.seed(3)
    res = RandomCropPad(crop_size=(32, 40))(_results(20, 30))
    img, valid, seg = res['img'], res['valid_mask'], res['gt_seg_map']
    assert img.shape == (32, 40, 3) and valid.shape == (32, 40)
    assert valid.sum() == 20 * 30  # the whole image lies inside
    assert (img[valid == 0] == 0).all()
    assert (seg[valid == 0] == 255).all()
    assert (seg == 2).sum() == 25
    # crop of a larger image: every pixel is valid
    res = RandomCropPad(crop_size=16)(_results(20, 30))
    assert res['valid_mask'].all() and res['img'].shape == (16, 16, 3)


def test_rescale_changes_image_and_mask_together():
    random.seed(0)
    res = RandomRescale(ratio_range=(2.0, 2.0))(_results(20, 30))
    assert res['img'].shape == (40, 60, 3)
    assert res['gt_seg_map'].shape == (40, 60)
    assert set(np.unique(res['gt_seg_map'])) == {0, 2}  # nearest


def test_strong_view_is_pixel_aligned():
    res = _results()
    for op in PHOTOMETRIC_OPS:
        out = StrongPhotometricView(ops=(op, ))(dict(res))
        assert out['img_strong'].shape == res['img'].shape
        assert out['img_strong'].dtype == np.uint8
    ident = StrongPhotometricView(ops=('identity', ))(dict(res))
    assert np.array_equal(ident['img_strong'], res['img'])
    sol = StrongPhotometricView(ops=('solarize', ),
                                magnitude_range=(9, 9))(dict(res))
    # threshold min(int(25.6*9), 255) = 230: only pixels >= 230 invert
    expected = np.where(res['img'] >= 230, 255 - res['img'], res['img'])
    assert np.array_equal(sol['img_strong'], expected)
    with pytest.raises(ValueError, match='unknown ops'):
        StrongPhotometricView(ops=('rotate', ))


def test_pack_and_preprocess_views_identically():
    random.seed(1)
    res = RandomCropPad(crop_size=(24, 36))(_results(20, 30))
    res = StrongPhotometricView(ops=('identity', ))(res)
    packed = PackWSSSInputs()(res)
    assert set(packed['inputs']) == {'weak', 'strong'}
    sample = packed['data_samples']
    assert torch.equal(sample.gt_img_labels, torch.tensor([0., 1., 0.]))
    assert isinstance(sample.valid_mask, PixelData)
    assert sample.valid_mask.shape == (24, 36)

    pre = MODELS.build(
        dict(type='WSSSDataPreprocessor', mean=[10, 20, 30], std=[2, 2, 2],
             bgr_to_rgb=True, size=(32, 40)))
    other = PackWSSSInputs()(
        StrongPhotometricView(ops=('identity', ))(
            RandomCropPad(crop_size=(24, 36))(_results(20, 30))))
    data = dict(
        inputs=dict(
            weak=[packed['inputs']['weak'], other['inputs']['weak']],
            strong=[packed['inputs']['strong'], other['inputs']['strong']]),
        data_samples=[sample, other['data_samples']])
    out = pre(data, training=True)
    weak, strong = out['inputs']['weak'], out['inputs']['strong']
    assert weak.shape == strong.shape == (2, 3, 32, 40)
    assert torch.equal(weak, strong)  # identity op: identical after norm
    img = torch.from_numpy(res['img']).permute(2, 0, 1).float()
    assert torch.allclose(weak[0, 0, :24, :36], (img[2] - 10) / 2)
    assert (weak[0, :, 24:, :] == 0).all()  # batch padding
    s0 = out['data_samples'][0]
    assert s0.valid_mask.shape == (32, 40)
    assert s0.valid_mask.data[0, 24:].sum() == 0
    assert s0.gt_sem_seg.shape == (32, 40)
    assert (s0.gt_sem_seg.data[0, 24:] == 255).all()
    # a single view stays a plain tensor
    single = pre(dict(inputs=[packed['inputs']['weak']],
                      data_samples=[PackWSSSInputs()(_results())[
                          'data_samples']]), training=False)
    assert torch.is_tensor(single['inputs'])


def test_mask_listed_in_seg_fields_moves_once():
    # mmseg's LoadAnnotations lists gt_seg_map in seg_fields as well: the
    # mask must be rescaled and cropped once, like the image
    random.seed(5)
    res = _results(20, 30)
    res['seg_fields'] = ['gt_seg_map']
    res = RandomRescale(ratio_range=(2.0, 2.0))(res)
    assert res['gt_seg_map'].shape == (40, 60)
    res = RandomCropPad(crop_size=(24, 36))(res)
    assert res['img'].shape == (24, 36, 3)
    assert res['gt_seg_map'].shape == (24, 36)
