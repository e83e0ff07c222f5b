"""ExCEL (the CLIP line, step 5): attribute-enriched text rows and
feature-surgery CAMs against hand-worked examples, the dual-path forward,
and the model training on the synthetic set with a tiny random CLIP."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

from mmseg_wsss.models.backbones.clip_vit import CLIPViT, surgery_forward
from mmseg_wsss.models.pseudo_labels import (attribute_text_rows,
                                             feature_surgery_cams)
from mmseg_wsss.models.segmentors import load_attribute_bank

from .conftest import (REPO, predict_first, random_text_bank, toy_batch,
                       train_steps)


def test_attribute_rows_by_hand():
    fg = torch.tensor([[1.0, 0.0]])
    bg = torch.tensor([[0.0, 2.0]])
    centres = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])  # (D, M=3)
    # keep 2/3 of M=3 -> drop int(1) lowest: s = [1, 0, 0.5] drops 0
    rows = attribute_text_rows(fg, bg, centres, keep=2 / 3)
    w1 = math.exp(1) / (math.exp(1) + math.exp(0.5))
    w3 = 1 - w1
    t = torch.tensor([1 + w1 + 0.5 * w3, 0.5 * w3])
    torch.testing.assert_close(rows[0], t / t.norm())
    torch.testing.assert_close(rows[1], torch.tensor([0.0, 1.0]))


def test_feature_surgery_by_hand():
    # one token besides [CLS], two rows, D = 2
    feats = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # p = softmax(2 * [1, 0]) ; w = p / mean(p)
    p1 = math.exp(2) / (math.exp(2) + 1)
    w = [2 * p1, 2 * (1 - p1)]
    # token 1: e_1 = [0.5 w0, 0], e_2 = [0, 0.5 w1]; minus the mean over
    # rows, summed over channels: s_1 = 0.5 w0 - (0.5 w0 + 0.5 w1) / 2 ...
    e = [[0.5 * w[0], 0.0], [0.0, 0.5 * w[1]]]
    mean = [(e[0][c] + e[1][c]) / 2 for c in range(2)]
    s_tok = [sum(e[j][c] - mean[c] for c in range(2)) for j in range(2)]
    e0 = [[w[0], 0.0], [0.0, 0.0]]  # [CLS]
    mean0 = [(e0[0][c] + e0[1][c]) / 2 for c in range(2)]
    s_cls = [sum(e0[j][c] - mean0[c] for c in range(2)) for j in range(2)]
    # min-max over the two tokens per row
    expect = (s_tok[0] - min(s_tok[0], s_cls[0])) / (
        max(s_tok[0], s_cls[0]) - min(s_tok[0], s_cls[0]))
    got = feature_surgery_cams(feats, text, num_fg=1)
    assert got.shape == (1, 1, 1)
    assert abs(float(got[0, 0, 0]) - expect) < 1e-6


def test_surgery_forward_keeps_the_original_stream():
    torch.manual_seed(0)
    bb = CLIPViT(arch=None, img_size=64, patch_size=8, embed_dims=32,
                 num_layers=4, num_heads=2, proj_dims=16, aux_layer=-2,
                 out_indices=(0, 1, 2))
    bb.init_weights()
    bb.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = surgery_forward(bb, x, surgery_blocks=2)
        ref = bb.forward_wsss(x, with_attn='sum')
        lvc = surgery_forward(bb, x, 2, ex_feats=torch.randn(2, 8, 8, 8))
    for a, b in zip(out['levels'][:3], ref['outs']):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out['attns'][3], ref['attns'][3], atol=1e-5,
                               rtol=1e-5)  # surgery blocks: head sums
    assert out['feats'].shape == (2, 65, 16)
    torch.testing.assert_close(out['feats'].norm(dim=1),
                               torch.ones(2, 16))  # token-axis norm
    assert not torch.allclose(out['feats'], lvc['feats'])


def test_attribute_bank_layouts(tmp_path):
    c = torch.randn(512, 7)
    torch.save([c, torch.zeros(20, 7)], tmp_path / 'authors.pth')
    torch.save(dict(centres=c), tmp_path / 'ours.pth')
    for name in ('authors.pth', 'ours.pth'):
        assert torch.equal(load_attribute_bank(str(tmp_path / name)), c)
    torch.save(dict(x=1), tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='not an attribute bank'):
        load_attribute_bank(str(tmp_path / 'bad.pth'))


def _excel(tmp_path, **train_cfg):
    text = random_text_bank(tmp_path / 'text.pth', 4)
    torch.save(dict(centres=torch.randn(512, 10)), tmp_path / 'bank.pth')
    return MODELS.build(dict(
        type='ExCEL',
        data_preprocessor=dict(type='WSSSDataPreprocessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                               size=(64, 64)),
        backbone=dict(type='CLIPViT', arch=None, img_size=64, patch_size=8,
                      embed_dims=32, num_layers=4, num_heads=2,
                      proj_dims=512, out_indices=(0, 1, 2, 3), aux_layer=-2,
                      frozen_stages=4),
        text_embeddings=text,
        attribute_bank=str(tmp_path / 'bank.pth'),
        decode_head=dict(type='WeCLIPHead', in_channels=32, num_levels=4,
                         channels=16, num_layers=1, num_heads=2, mlp_dims=32,
                         num_classes=5),
        train_cfg=dict(dict(surgery_blocks=2, rfm_last=3, aff_radius=2,
                            par=dict(num_iter=2)), **train_cfg),
        test_cfg=dict(scales=(1.0, ), flip=True)))


@pytest.mark.parametrize('late', [False, True])
def test_excel_trains_on_the_synthetic_set(tmp_path, toy_root, late):
    """Before the start iterations (fixed pseudo-labels: the loss falls)
    and with RFM, LVC and self-targets of the affinity loss all on."""
    torch.manual_seed(0)
    start = 0 if late else 10**6
    model = _excel(tmp_path, rfm_start_iter=start, lvc_start_iter=start,
                   aff_self_iter=start)
    model.init_weights()
    assert model.text_rows.shape == (4 + 25, 512)
    batch = toy_batch(toy_root)

    def check(losses):
        assert set(losses) == {'loss_seg', 'loss_aff'}

    totals = train_steps(model, batch, 8, lr=5e-3, on_losses=check)
    assert np.isfinite(totals).all()
    if not late:
        assert np.mean(totals[-2:]) < 0.9 * np.mean(totals[:2]), totals
    out = predict_first(model, batch)
    assert tuple(out.pred_sem_seg.data.shape[-2:]) == \
        tuple(out.metainfo['ori_shape'][:2])


def test_text_tool_builds_an_attribute_bank(tmp_path):
    import importlib.util
    import json
    spec = importlib.util.spec_from_file_location(
        'clip_text_tool', osp.join(REPO, 'tools', 'clip_text_embeddings.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    (tmp_path / 'classes.txt').write_text('cat\ndog\n')
    (tmp_path / 'desc.json').write_text(json.dumps({
        'cat': ['a clean origami cat. it has whiskers.',
                'a clean origami cat. it has fur.'],
        'dog': ['a clean origami dog. it has a tail.',
                'a clean origami dog. it barks.', 'a dog on grass.']}))
    tool.main(['--random-init', '1', '--classes',
               str(tmp_path / 'classes.txt'), '--bg', 'none', '--out',
               str(tmp_path / 'text.pth'), '--attributes',
               str(tmp_path / 'desc.json'), '--clusters', '3', '--bank-out',
               str(tmp_path / 'bank.pth')])
    centres = load_attribute_bank(str(tmp_path / 'bank.pth'))
    assert centres.shape == (512, 3)
    norms = centres.norm(dim=0)
    assert (norms <= 1 + 1e-5).all()  # means of unit vectors, not unit
    from mmseg_wsss.utils import safe_torch_load
    bank = safe_torch_load(str(tmp_path / 'bank.pth'))
    assert bank['incidence'].shape == (2, 3) and bank['num_sentences'] == 5
    assert bank['incidence'].sum(1).min() >= 1
