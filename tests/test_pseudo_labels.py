import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_wsss.models.pseudo_labels import (cam_to_label,
                                             cam_to_label_with_bg_threshold,
                                             multi_scale_flip, normalize_cam,
                                             resize_to_multiple)


def test_normalize_cam_per_image_and_class():
    cam = torch.tensor([[[[1.0, 3.0], [5.0, 9.0]],
                         [[-2.0, -2.0], [0.0, 2.0]]]])
    out = normalize_cam(cam, eps=0.0)
    assert torch.allclose(out[0, 0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.allclose(out[0, 1], torch.tensor([[0.0, 0.0], [0.5, 1.0]]))


def test_cam_to_label_hand_computed():
    # 3 classes, class 2 absent from the image labels
    cam = torch.zeros(1, 3, 2, 3)
    cam[0, 0] = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.75, 0.0]])
    cam[0, 1] = torch.tensor([[0.1, 0.6, 0.3], [0.8, 0.7, 0.0]])
    cam[0, 2] = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # absent
    labels = torch.tensor([[1.0, 1.0, 0.0]])
    valid = torch.tensor([[[1, 1, 1], [1, 1, 0]]])
    out = cam_to_label(cam, labels, low_thr=0.25, high_thr=0.7,
                       valid_mask=valid)
    # max over present: [[.9(c0), .6(c1), .3(c1)], [.8(c1), .75(c0), 0]]
    expected = torch.tensor([[[1, 255, 255], [2, 1, 255]]])
    assert torch.equal(out, expected)
    with pytest.raises(ValueError):
        cam_to_label(cam, labels, low_thr=0.8, high_thr=0.7)


def test_cam_to_label_with_bg_threshold():
    cam = torch.tensor([[[[0.2, 0.6]], [[0.5, 0.1]]]])
    labels = torch.tensor([[1.0, 1.0]])
    out = cam_to_label_with_bg_threshold(cam, labels, 0.4)
    assert torch.equal(out, torch.tensor([[[2, 1]]]))
    out = cam_to_label_with_bg_threshold(cam, torch.tensor([[1.0, 0.0]]), 0.4)
    assert torch.equal(out, torch.tensor([[[0, 1]]]))


def test_resize_to_multiple():
    x = torch.zeros(1, 3, 50, 70)
    assert resize_to_multiple(x, 1.0, 16).shape[-2:] == (48, 64)
    assert resize_to_multiple(x, 0.5, 16).shape[-2:] == (32, 32)
    assert resize_to_multiple(torch.zeros(1, 3, 64, 64), 1.0, 16) is not None


def test_multi_scale_flip_pair_reduce():
    img = torch.arange(16.0).view(1, 1, 4, 4).repeat(1, 3, 1, 1)

    def fn(x):  # "CAM" = the image's first channel minus 5, "seg" = same
        return dict(cam=x[:, :1] - 5, seg=x[:, :1])

    out = multi_scale_flip(fn, img, scales=(1.0, ), flip=True,
                           pair_reduce=dict(cam='max_relu'))
    # the flipped copy, flipped back, equals the original
    assert torch.allclose(out['cam'], (img[:, :1] - 5).relu())
    assert torch.allclose(out['seg'], 2 * img[:, :1])
    out2 = multi_scale_flip(fn, img, scales=(1.0, 1.0), flip=False)
    assert torch.allclose(out2['seg'], 2 * img[:, :1])


# ------------------------------------------------------ feature affinity
def test_feature_affinity_fills_the_object_exactly():
    """A 2-region token map (object tokens share one feature, background
    tokens an orthogonal one): a CAM on two object tokens spreads to the
    whole object with the object's mean, and nothing reaches the
    background (hand values)."""
    from mmseg_wsss.models.pseudo_labels import (feature_affinity_refine,
                                                 token_affinity)
    obj = torch.zeros(3, 4, dtype=torch.bool)
    obj[:2, :2] = True  # 4 object tokens of 12
    feats = torch.zeros(1, 2, 3, 4)
    feats[0, 0][obj] = 1.0
    feats[0, 1][~obj] = 2.0  # any length: cosine similarity
    cam = torch.zeros(1, 1, 3, 4)
    cam[0, 0, 0, 0] = 1.0
    cam[0, 0, 1, 1] = 0.6
    aff = token_affinity(feats)
    torch.testing.assert_close(aff.sum(-1), torch.ones(1, 12))
    assert aff[0, 0, 5] == pytest.approx(0.25)  # 1 / 4 object tokens
    out = feature_affinity_refine(cam, feats, beta=1.0, steps=1)
    expected = torch.zeros(3, 4)
    expected[obj] = (1.0 + 0.6) / 4
    torch.testing.assert_close(out[0, 0], expected)
    # more steps keep the fixed point; beta does not matter for 0/1 cosines
    torch.testing.assert_close(
        feature_affinity_refine(cam, feats, beta=2.0, steps=3)[0, 0],
        expected)
    # absent classes are zeroed; maps at pixel size are pooled and resized
    two = torch.cat([cam, cam], 1)
    out = feature_affinity_refine(two, feats, present=torch.tensor([[1., 0]]))
    assert out[0, 1].abs().sum() == 0
    big = F.interpolate(cam, scale_factor=8, mode='nearest')  # (24, 32)
    out = feature_affinity_refine(big, feats)
    assert out.shape == (1, 1, 24, 32)
    assert out[0, 0, 20:, 20:].abs().max() < 1e-6  # background stays 0
    with pytest.raises(ValueError, match='steps'):
        feature_affinity_refine(cam, feats, steps=0)


def test_feature_affinity_colour_and_position_terms():
    from mmseg_wsss.models.pseudo_labels import token_affinity
    feats = torch.ones(1, 4, 1, 3)  # identical features everywhere
    plain = token_affinity(feats)
    torch.testing.assert_close(plain[0], torch.full((3, 3), 1 / 3))
    colors = torch.tensor([[[[0., 0., 1.]]] * 3])  # token 2 differs
    col = token_affinity(feats, colors=colors, color_sigma=0.1)
    assert col[0, 0, 2] < 1e-6 and col[0, 0, 1] == pytest.approx(0.5)
    pos = token_affinity(feats, pos_sigma=1.0)
    # exp(-1/2) and exp(-4/2) relative to 1 for distances 1 and 2
    w = torch.tensor([1.0, math.exp(-0.5), math.exp(-2.0)])
    torch.testing.assert_close(pos[0, 0], w / w.sum())


def test_feature_affinity_center_removes_a_shared_component():
    """Tokens that share one large component (object (1, 0, 10), background
    (0, 1, 10)) all look alike to the plain cosine (0.99), so the CAM leaks
    into the background; centred (mean token (1/3, 2/3, 10) subtracted)
    object and background are opposite (cosine -1, clipped to 0) and the
    object is filled exactly as in the 2-region example."""
    from mmseg_wsss.models.pseudo_labels import (feature_affinity_refine,
                                                 token_affinity)
    obj = torch.zeros(3, 4, dtype=torch.bool)
    obj[:2, :2] = True
    feats = torch.zeros(1, 3, 3, 4)
    feats[0, 0][obj] = 1.0
    feats[0, 1][~obj] = 1.0
    feats[0, 2] = 10.0
    cam = torch.zeros(1, 1, 3, 4)
    cam[0, 0, 0, 0] = 1.0
    cam[0, 0, 1, 1] = 0.6
    plain = feature_affinity_refine(cam, feats)
    assert plain[0, 0][~obj].min() > 0.1  # leaks everywhere
    aff = token_affinity(feats, center=True)
    assert aff[0, 0][~obj.flatten()].abs().max() < 1e-6
    centred = feature_affinity_refine(cam, feats, center=True)
    expected = torch.zeros(3, 4)
    expected[obj] = (1.0 + 0.6) / 4
    torch.testing.assert_close(centred[0, 0], expected)
