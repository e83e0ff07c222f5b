"""Each CLIP-line reference quirk is a switch that changes what it says:
both settings run and give different results (``clip.md`` §6)."""
import torch

from mmseg_wsss.models.pseudo_labels import box_mask, clip_es_scores

from .test_weclip import _weclip
from .test_weclip_plus import _model as _weclip_plus


def test_box_last_rule_and_bg_power_both_ways():
    cam = torch.zeros(4, 4)
    cam[2:, 2:] = 1.0
    assert box_mask(cam, 0.4, last_rule=True).sum() == 1
    assert box_mask(cam, 0.4, last_rule=False).sum() == 4
    cams = torch.tensor([[[0.5]]])
    assert float(clip_es_scores(cams, 1.0)[0]) == 0.5
    assert float(clip_es_scores(cams, 2.0)[0]) == 0.25


def _pl(model, img, present, **cfg):
    model.train_cfg.update(cfg)
    clip = model.clip_pass(img)
    aff = torch.rand(64, 64, generator=torch.Generator().manual_seed(0))
    return model.pseudo_label(img[0], clip, 0, present, aff, (64, 64))


def test_weclip_cam_input_block_and_rfm_both_ways(tmp_path):
    torch.manual_seed(0)
    model = _weclip(tmp_path, par=None)
    model.init_weights()
    img = torch.randn(1, 3, 64, 64)
    clip = model.clip_pass(img)
    # the last block reads block 3's input (-1, WeCLIP) or block 2's (-2,
    # WeCLIP+'s quirk): different tokens reach GradCAM
    last = len(model.backbone.blocks) - 1
    a = clip['ins'][last + (-1) + 1]
    b = clip['ins'][last + (-2) + 1]
    assert a.shape == b.shape and not torch.allclose(a, b)
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    caa = _pl(model, img, [0, 2], rfm_start_iter=10)
    rfm = _pl(model, img, [0, 2], rfm_start_iter=0)
    assert caa.shape == rfm.shape == (64, 64)
    assert not torch.equal(caa, rfm)  # the refinement attention differs
    hub.update_info('iter', 0)


def test_weclip_plus_box_with_prior_both_ways(tmp_path):
    torch.manual_seed(0)
    model = _weclip_plus(tmp_path, par=None)
    model.init_weights()
    img = torch.randn(1, 3, 64, 64)
    clip, seg_c, seg_d, feat = model.predictions(img)
    prior = (0.5 * (seg_c + seg_d)).softmax(1)[0].detach()
    f = feat.flatten(2)
    aff = torch.sigmoid(f.transpose(1, 2) @ f)[0].detach()
    out = {}
    for flag in (False, True):
        model.train_cfg['box_with_prior'] = flag
        out[flag] = model.pseudo_label_plus(img[0], clip, 0, [1, 2], aff,
                                            prior, (64, 64))
    assert out[False].shape == out[True].shape == (64, 64)
    assert set(out[False].unique().tolist()) <= {0, 2, 3}
    assert not torch.equal(out[False], out[True])  # the box matters


def test_excel_surgery_blocks_and_attribute_keep_both_ways():
    from mmseg_wsss.models.backbones.clip_vit import CLIPViT, surgery_forward
    from mmseg_wsss.models.pseudo_labels import attribute_text_rows
    torch.manual_seed(0)
    bb = CLIPViT(arch=None, img_size=64, patch_size=8, embed_dims=32,
                 num_layers=6, num_heads=2, proj_dims=16, aux_layer=-2)
    bb.init_weights()
    bb.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        five = surgery_forward(bb, x, 5)   # the reference's loop
        six = surgery_forward(bb, x, 6)    # its comment and argument
    assert not torch.allclose(five['feats'], six['feats'])
    # surgery blocks return head sums, plain blocks head means
    assert torch.allclose(five['attns'][0].sum(-1), torch.ones(1, 65))
    assert torch.allclose(five['attns'][1].sum(-1), 2 * torch.ones(1, 65))
    fg, bg = torch.randn(3, 16), torch.randn(2, 16)
    centres = torch.randn(16, 10)
    assert not torch.allclose(attribute_text_rows(fg, bg, centres, 0.9),
                              attribute_text_rows(fg, bg, centres, 1.0))


def test_start_clock_and_excel_normalisations_both_ways(tmp_path):
    from mmengine.logging import MessageHub

    from mmseg_wsss.models.backbones.clip_vit import CLIPViT, surgery_forward
    from mmseg_wsss.models.pseudo_labels import excel_affinity
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 5)
    model = _weclip(tmp_path)
    assert model.clock() == 5  # training iterations (the default)
    model.train_cfg['start_clock'] = 'forward'
    model.eval()
    with torch.no_grad():  # validation forwards count, as the reference
        for _ in range(3):
            model.predict(torch.randn(1, 3, 64, 64))
    assert model.clock() == 3
    assert 'forward_calls' in model.state_dict()  # resumes with the count
    hub.update_info('iter', 0)
    torch.manual_seed(0)
    bb = CLIPViT(arch=None, img_size=64, patch_size=8, embed_dims=32,
                 num_layers=4, num_heads=2, proj_dims=16, aux_layer=-2)
    bb.init_weights()
    bb.eval()
    x = torch.randn(2, 3, 64, 64)
    ex = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        ref = surgery_forward(bb, x, 2, ex)
        chan = surgery_forward(bb, x, 2, ex, norm_axis='channels')
        per = surgery_forward(bb, x, 2, ex, batch_mean=False)
    torch.testing.assert_close(chan['feats'].norm(dim=-1),
                               torch.ones(2, 65))
    assert not torch.allclose(ref['feats'], chan['feats'])
    assert not torch.allclose(ref['feats'], per['feats'])
    f = torch.randn(2, 8, 4, 4)
    assert not torch.allclose(excel_affinity(f, True),
                              excel_affinity(f, False))


def test_clip_es_crf_image_quirk_both_ways(tmp_path):
    """--crf-image clip-es-reference: BGR minus the mean, negatives wrapped
    (by hand), and the CRF sees another image than with rgb."""
    import importlib.util
    import os.path as osp

    import cv2
    import numpy as np

    from .conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'gpl', osp.join(REPO, 'tools', 'gen_pseudo_labels.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    bgr = np.array([[[100, 120, 130], [250, 0, 122]]], np.uint8)
    got = tool.crf_reference_image(bgr)
    # 100 - 104.008 = -4.008 -> -4 -> 252; 120 - 116.669 = 3.33 -> 3;
    # 130 - 122.675 = 7.3 -> 7; 250 - 104.008 = 145.99 -> 145;
    # 0 - 116.669 -> -116 -> 140; 122 - 122.675 = -0.675 -> 0
    assert got.tolist() == [[[252, 3, 7], [145, 140, 0]]]
    rng = np.random.RandomState(0)
    img = (rng.rand(24, 32, 3) * 255).astype(np.uint8)
    path = str(tmp_path / 'x.jpg')
    cv2.imwrite(path, img)
    probs = rng.rand(2, 24, 32).astype(np.float16)
    tool._init_worker(dict(iterations=5))
    out = {}
    for mode in ('rgb', 'clip-es-reference'):
        task = dict(out_path=str(tmp_path / f'{mode}.png'), gt_path=None,
                    num_classes=2, palette=[0] * 768, probs=probs,
                    channels=[0, 1], img_path=path, crf_image=mode)
        tool.process_one(task)
        out[mode] = np.array(__import__('PIL.Image').Image.open(
            task['out_path']))
    assert out['rgb'].shape == out['clip-es-reference'].shape == (24, 32)
    assert not np.array_equal(out['rgb'], out['clip-es-reference'])
