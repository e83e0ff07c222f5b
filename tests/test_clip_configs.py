"""The shipped CLIP-line configs themselves train (WeCLIP, WeCLIP+, ExCEL)
or export (CLIP-ES) on the synthetic set, shrunk to a tiny random CLIP: the
same model type, losses, heads and train_cfg as written, only the widths,
the data root and the user's files replaced."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import MODELS

from .conftest import (REPO, random_text_bank, toy_train_loader,
                       train_steps)

TINY_CLIP = dict(arch=None, img_size=64, patch_size=8, embed_dims=32,
                 num_layers=4, num_heads=2, proj_dims=512, aux_layer=-2,
                 frozen_stages=4, pretrained=None)


def _shrink(cfg, tmp_path, toy_root):
    m = cfg.model
    levels = {'WeCLIP': (0, 1, 2), 'WeCLIPPlus': (2, ),
              'ExCEL': (0, 1, 2, 3)}[m.type]
    m.backbone.update(TINY_CLIP, out_indices=levels)
    m.text_embeddings = random_text_bank(tmp_path / 'text.pth', 4)
    head = m.decode_head
    small = dict(channels=16, num_layers=1, num_heads=2, mlp_dims=32,
                 num_classes=5)
    if m.type == 'WeCLIPPlus':
        head.update(small, clip_channels=32, clip_levels=1,
                    dino_channels=24)
        m.dino.update(img_size=56, embed_dims=24, num_layers=2,
                      num_heads=2, aux_layer=-1, frozen_stages=2,
                      pretrained=None)
    else:
        head.update(small, in_channels=32, num_levels=len(levels))
    if m.type == 'ExCEL':
        torch.save(dict(centres=torch.randn(512, 10)), tmp_path / 'b.pth')
        m.attribute_bank = str(tmp_path / 'b.pth')
        m.train_cfg.update(surgery_blocks=2)
    m.train_cfg.update(rfm_last=3, aff_radius=2, par=dict(num_iter=2))
    if 'caa_blocks' in m.train_cfg or m.type == 'WeCLIP':
        m.train_cfg['caa_blocks'] = 3
    m.data_preprocessor['size'] = (64, 64)
    return toy_train_loader(toy_root)


@pytest.mark.parametrize('path', [
    'configs/weclip/weclip_vitb16_voc.py',
    'configs/weclip_plus/weclip-plus_vitb16-dinov2s_voc.py',
    'configs/excel/excel_vitb16_voc.py',
])
def test_clip_config_trains_on_the_synthetic_set(tmp_path, toy_root, path):
    cfg = Config.fromfile(osp.join(REPO, path))
    loader = _shrink(cfg, tmp_path, toy_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    batch = next(iter(Runner.build_dataloader(loader, seed=0)))
    # 10 steps: before the configs' start iterations
    totals = train_steps(model, batch, 10, lr=5e-3)
    assert np.isfinite(totals).all()
    assert np.mean(totals[-2:]) < 0.95 * np.mean(totals[:2]), totals
