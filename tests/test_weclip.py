"""WeCLIP (the CLIP line, step 4): the refinement module's layer selection
and the affinity loss against hand-worked examples, and the model training
a few steps on the synthetic set with a tiny random CLIP."""

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

from mmseg_wsss.models.pseudo_labels import (affinity_loss,
                                             affinity_targets, rfm_select)

from .conftest import (predict_first, random_text_bank, toy_batch,
                       train_steps)


def test_rfm_layer_selection_by_hand():
    seg = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    layers = [torch.full((2, 2), v) for v in (0.9, 0.1, 0.4, 0.6)]
    # last 3: 0.1, 0.4, 0.6 -> signed d = 4 * (0.5 - v) = 1.6, 0.4, -0.4;
    # mean 0.533: keep 0.4 and 0.6 (d <= mean), not 0.1
    att, keep = rfm_select(layers, seg, last=3)
    assert keep.tolist() == [False, True, True]
    expect = (0.4 + 0.6) / (2 + 1e-5) * 0.5
    torch.testing.assert_close(att, torch.full((2, 2), expect))
    # the paper's absolute distance: |d| = 1.6, 0.4, 0.4 -> the same two
    _, keep_abs = rfm_select(layers, seg, last=3, signed=False)
    assert keep_abs.tolist() == [False, True, True]
    # where they differ: 0.25, 0.75 -> signed 1, -1 (keep 0.75); absolute
    # 1, 1 (keep both)
    two = [torch.full((2, 2), 0.25), torch.full((2, 2), 0.75)]
    assert rfm_select(two, seg, last=2)[1].tolist() == [False, True]
    assert rfm_select(two, seg, last=2, signed=False)[1].tolist() == \
        [True, True]


def test_affinity_targets_and_loss_by_hand():
    # one image, a 1 x 3 grid: labels 1, 1, 2 (and 255 for the third pixel
    # in the second image)
    label = torch.tensor([[[1, 1, 2]], [[1, 1, 255]]])
    t = affinity_targets(label, (1, 3), radius=1)
    assert t[0].tolist() == [[1, 1, 255], [1, 1, 0], [255, 0, 1]]
    assert t[1].tolist() == [[1, 1, 255], [1, 1, 255], [255, 255, 255]]
    aff = torch.tensor([[[0.9, 0.8, 0.3], [0.8, 0.7, 0.2], [0.3, 0.2, 1.0]],
                        [[1.0] * 3] * 3])
    # image 0 positives: (0,0) .9 (0,1) .8 (1,0) .8 (1,1) .7 (2,2) 1.0;
    # image 1 positives: four pairs of 1.0 -> sum (1 - A) = 0.1 + 0.2 + 0.2
    # + 0.3 + 0 = 0.8 over n_pos = 9; negatives (1,2) .2 (2,1) .2 -> 0.4
    # over n_neg = 2
    expect = 0.5 * 0.8 / (9 + 1) + 0.5 * 0.4 / (2 + 1)
    torch.testing.assert_close(affinity_loss(aff, t),
                               torch.tensor(expect))


def _weclip(tmp_path, **train_cfg):
    text = random_text_bank(tmp_path / 'text.pth', 4)
    return MODELS.build(dict(
        type='WeCLIP',
        data_preprocessor=dict(type='WSSSDataPreprocessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               size=(64, 64)),
        backbone=dict(type='CLIPViT', arch=None, img_size=64, patch_size=8,
                      embed_dims=32, num_layers=4, num_heads=2,
                      proj_dims=512, out_indices=(0, 1, 2), aux_layer=-2,
                      frozen_stages=4),
        text_embeddings=text,
        decode_head=dict(type='WeCLIPHead', in_channels=32, num_levels=3,
                         channels=16, num_layers=1, num_heads=2, mlp_dims=32,
                         num_classes=5),
        train_cfg=dict(dict(caa_blocks=3, rfm_last=3, aff_radius=2,
                            par=dict(num_iter=2)), **train_cfg),
        test_cfg=dict(scales=(1.0, ), flip=True)))


@pytest.mark.parametrize('rfm', [False, True])
def test_weclip_trains_on_the_synthetic_set(tmp_path, toy_root, rfm):
    torch.manual_seed(0)
    model = _weclip(tmp_path, rfm_start_iter=0 if rfm else 10**6)
    model.init_weights()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    batch = toy_batch(toy_root)

    def check(losses):
        assert set(losses) == {'loss_seg', 'loss_aff'}

    totals = train_steps(model, batch, 8, lr=2e-3, on_losses=check)
    assert np.isfinite(totals).all()
    if not rfm:  # fixed pseudo-labels: the decoder fits them
        assert np.mean(totals[-2:]) < 0.9 * np.mean(totals[:2]), totals
    out = predict_first(model, batch)
    assert tuple(out.pred_sem_seg.data.shape[-2:]) == \
        tuple(out.metainfo['ori_shape'][:2])
    assert int(out.pred_sem_seg.data.max()) <= 4


def test_weclip_pseudo_labels_hold_only_present_classes(tmp_path):
    torch.manual_seed(0)
    model = _weclip(tmp_path)
    model.init_weights()
    img = torch.randn(1, 3, 64, 64)
    clip = model.clip_pass(img)
    aff = torch.rand(64, 64)
    pl = model.pseudo_label(img[0], clip, 0, [1, 3], aff, (64, 64))
    assert pl.shape == (64, 64)
    assert set(pl.unique().tolist()) <= {0, 2, 4}
    assert model.pseudo_label(img[0], clip, 0, [], aff, (64, 64)).sum() == 0
