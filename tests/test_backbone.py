import pytest
import torch

from mmseg_wsss.models.backbones import (WSSSViT, convert_timm_vit,
                                         resize_pos_embed)

from .conftest import DINOV2, require_shared


def _tiny(**kw):
    cfg = dict(img_size=32, patch_size=8, embed_dims=32, num_layers=3,
               num_heads=2, mlp_ratio=2)
    cfg.update(kw)
    vit = WSSSViT(**cfg)
    vit.init_weights()
    return vit.eval()


def test_outputs_shapes_non_square():
    vit = _tiny(out_indices=(0, 2), aux_layer=-2)
    out = vit.forward_wsss(torch.randn(2, 3, 40, 56), with_attn=True)
    assert out['grid'] == (5, 7)
    assert [tuple(o.shape) for o in out['outs']] == [(2, 32, 5, 7)] * 2
    assert out['tokens'].shape == (2, 32, 5, 7)
    assert out['aux_tokens'].shape == (2, 32, 5, 7)
    assert out['cls_token'].shape == (2, 32)
    assert len(out['attns']) == 3
    assert out['attns'][0].shape == (2, 36, 36)
    # the last out index is the final (normed) tokens
    assert torch.allclose(out['outs'][1], out['tokens'])
    heads = vit.forward_wsss(torch.randn(1, 3, 16, 16), with_attn='heads')
    assert heads['attns'][0].shape == (1, 2, 5, 5)
    assert vit.forward_wsss(torch.randn(1, 3, 16, 16))['attns'] is None


def test_fused_and_explicit_attention_agree():
    vit = _tiny()
    x = torch.randn(1, 3, 24, 32)
    a = vit.forward_wsss(x)['tokens']
    b = vit.forward_wsss(x, with_attn=True)['tokens']
    assert torch.allclose(a, b, atol=1e-5)


def test_input_not_multiple_of_patch_raises():
    with pytest.raises(ValueError, match='multiple of the patch size'):
        _tiny()(torch.randn(1, 3, 30, 32))


def test_pos_embed_resize_identity_and_bicubic():
    pe = torch.randn(1, 1 + 16, 8)
    assert resize_pos_embed(pe, (4, 4), (4, 4)) is pe
    out = resize_pos_embed(pe, (4, 4), (6, 3))
    assert out.shape == (1, 1 + 18, 8)
    assert torch.equal(out[:, :1], pe[:, :1])  # class token untouched
    const = torch.ones(1, 17, 2)
    assert torch.allclose(
        resize_pos_embed(const, (4, 4), (7, 5)), torch.ones(1, 36, 2),
        atol=1e-5)


def test_freeze_pos_embed():
    assert not _tiny(freeze_pos_embed=True).pos_embed.requires_grad
    assert _tiny().pos_embed.requires_grad


def test_converter_strips_prefixes_and_head(tmp_path):
    src = _tiny(layer_scale_init=1e-5)
    sd = {'module.' + k: v for k, v in src.state_dict().items()}
    sd['module.head.weight'] = torch.zeros(10, 32)
    sd = {k.replace('ls1.gamma', 'ls1.weight'): v for k, v in sd.items()}
    path = tmp_path / 'vit.pth'
    torch.save({'state_dict': sd}, path)
    dst = WSSSViT(img_size=48, patch_size=8, embed_dims=32, num_layers=3,
                  num_heads=2, mlp_ratio=2, layer_scale_init=1.0,
                  pretrained=str(path))
    dst.init_weights()  # strict: raises on any missing/unexpected key
    assert torch.equal(dst.blocks[0].ls1.gamma, src.blocks[0].ls1.gamma)
    assert dst.pos_embed.shape == (1, 1 + 36, 32)
    bad = WSSSViT(img_size=32, patch_size=8, embed_dims=32, num_layers=4,
                  num_heads=2, mlp_ratio=2, pretrained=str(path))
    with pytest.raises(RuntimeError, match='missing keys'):
        bad.init_weights()
    with pytest.raises(FileNotFoundError, match='backbone.pretrained'):
        WSSSViT(pretrained=str(tmp_path / 'nope.pth')).init_weights()


def test_dinov2_loads_strictly_and_attention_is_stochastic():
    require_shared(DINOV2)
    vit = WSSSViT(img_size=518, patch_size=14, embed_dims=384, num_layers=12,
                  num_heads=6, layer_scale_init=1.0, pretrained=DINOV2)
    vit.init_weights()
    sd = torch.load(DINOV2, map_location='cpu', weights_only=True)
    conv = convert_timm_vit(sd, vit.pos_hw)
    assert torch.equal(vit.blocks[5].attn.qkv.weight,
                       sd['blocks.5.attn.qkv.weight'])
    assert torch.equal(vit.pos_embed, conv['pos_embed'])
    assert sum(p.numel() for p in vit.parameters()) == 22_056_192
    vit.eval()
    with torch.no_grad():
        out = vit.forward_wsss(torch.randn(1, 3, 70, 98), with_attn=True)
    assert out['grid'] == (5, 7)
    for attn in out['attns']:
        assert attn.shape == (1, 36, 36)
        assert (attn >= 0).all()
        assert torch.allclose(attn.sum(-1), torch.ones(1, 36), atol=1e-5)


def test_frozen_stages():
    vit = _tiny(frozen_stages=2)
    vit.train()
    trainable = {n for n, p in vit.named_parameters() if p.requires_grad}
    assert not any(n.startswith(('patch_embed', 'blocks.0.', 'blocks.1.'))
                   for n in trainable)
    assert {'cls_token', 'pos_embed'}.isdisjoint(trainable)
    assert any(n.startswith('blocks.2.') for n in trainable)
    assert 'norm.weight' in trainable
    assert not vit.blocks[0].training and vit.blocks[2].training
    full = _tiny(frozen_stages=3)
    assert not any(p.requires_grad for p in full.parameters())
