"""WeCLIP+ (the CLIP line, step 6): its Dice loss by hand, the shared
decoder, and the model training on the synthetic set with a tiny random
CLIP and a tiny DINOv2-shaped ViT."""

import numpy as np
import torch
from mmseg.registry import MODELS

from mmseg_wsss.models.losses.dice_loss import weclip_dice_loss

from .conftest import (predict_first, random_text_bank, toy_batch,
                       train_steps)


def test_dice_by_hand():
    # two pixels, two classes; softmax(logits) = [[0.5, 0.5], [0.8808, 0.1192]]
    logits = torch.tensor([[[[0.0, 2.0]], [[0.0, 0.0]]]])   # (1, 2, 1, 2)
    label = torch.tensor([[[1, 0]]])
    p0 = 1 / (1 + np.exp(-2.0))
    # class 0: inter = p0 (pixel 2), denom = 0.5 + p0 + 1
    # class 1: inter = 0.5 (pixel 1), denom = 0.5 + (1 - p0) + 1
    d0 = 2 * p0 / (0.5 + p0 + 1)
    d1 = 2 * 0.5 / (0.5 + (1 - p0) + 1)
    expect = 1 - (d0 + d1) / 2
    torch.testing.assert_close(weclip_dice_loss(logits, label),
                               torch.tensor(expect, dtype=torch.float32))
    # an ignored pixel adds to no class's y
    ignored = weclip_dice_loss(logits, torch.tensor([[[1, 255]]]))
    d0 = 0.0
    d1 = 2 * 0.5 / (0.5 + (1 - p0) + 1)
    torch.testing.assert_close(ignored, torch.tensor(
        1 - (d0 + d1) / 2, dtype=torch.float32))


def _model(tmp_path, **train_cfg):
    text = random_text_bank(tmp_path / 'text.pth', 4)
    return MODELS.build(dict(
        type='WeCLIPPlus',
        data_preprocessor=dict(type='WSSSDataPreprocessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               size=(64, 64)),
        backbone=dict(type='CLIPViT', arch=None, img_size=64, patch_size=8,
                      embed_dims=32, num_layers=4, num_heads=2,
                      proj_dims=512, out_indices=(2, ), aux_layer=-2,
                      frozen_stages=4),
        dino=dict(type='WSSSViT', img_size=56, patch_size=14, embed_dims=24,
                  num_layers=2, num_heads=2, layer_scale_init=1.0,
                  aux_layer=-1),
        text_embeddings=text,
        decode_head=dict(type='WeCLIPPlusHead', clip_channels=32,
                         clip_levels=1, dino_channels=24, channels=16,
                         num_layers=1, num_heads=2, mlp_dims=32,
                         num_classes=5),
        train_cfg=dict(dict(caa_blocks=3, rfm_last=3, aff_radius=2,
                            par=dict(num_iter=2)), **train_cfg),
        test_cfg=dict(scales=(1.0, ), flip=False)))


def test_weclip_plus_trains_on_the_synthetic_set(tmp_path, toy_root):
    torch.manual_seed(0)
    model = _model(tmp_path, self_label_iter=4)
    model.init_weights()
    frozen = list(model.backbone.parameters()) + \
        list(model.dino.parameters())
    assert not any(p.requires_grad for p in frozen)
    batch = toy_batch(toy_root)

    def check(losses):
        assert set(losses) == {'loss_seg', 'loss_aff', 'loss_cross',
                               'loss_dice'}

    def dino_front_end_learns():
        # the shared transformer stack learns from both branches; the DINO
        # front-end gets gradient
        assert model.decode_head.dino_mlp[0].weight.grad.abs().sum() > 0

    # the seg self-labels switch on at iteration 4
    totals = train_steps(model, batch, 8, lr=2e-3, on_losses=check,
                         after_backward=dino_front_end_learns)
    assert np.isfinite(totals).all()
    out = predict_first(model, batch)
    assert tuple(out.pred_sem_seg.data.shape[-2:]) == \
        tuple(out.metainfo['ori_shape'][:2])


def test_shared_decoder_is_one_stack(tmp_path):
    model = _model(tmp_path)
    head = model.decode_head
    n_blocks = sum(1 for n, _ in head.named_modules()
                   if n.endswith('blocks.0'))
    assert n_blocks == 1  # one transformer stack serves both branches
    clip = [torch.randn(1, 32, 8, 8)]
    dino = torch.randn(1, 24, 4, 4)
    sc, sd, fc, fd = head.forward_both(clip, dino)
    assert sc.shape == sd.shape == (1, 5, 8, 8)
    assert fc.shape == fd.shape == (1, 16, 8, 8)
