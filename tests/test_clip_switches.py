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
