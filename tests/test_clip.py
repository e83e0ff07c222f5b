"""The CLIP line, step 1 and 2: CLIP's image tower as a WSSS backbone
(equal to open_clip's on identical random weights) and class text
embeddings from a checkpoint on disk."""
import os.path as osp
import sys

import pytest
import torch

from mmseg_wsss.models.backbones.clip_vit import (CLIPViT,
                                                  convert_clip_visual)
from mmseg_wsss.models.utils.clip_text import (COCO_BG_WORDS, VOC_BG_WORDS,
                                               VOC_WORDS, coco_words,
                                               load_text_bank)

from .conftest import REPO

open_clip = pytest.importorskip(
    'open_clip', reason="open_clip is in requirements/optional.txt "
    "(tools/setup_env.sh installs it); pip install -e '.[clip]'")


def _open_clip_visual(arch, image_size, layers=None):
    from open_clip.transformer import QuickGELU, VisionTransformer
    sizes = dict(B16=dict(patch_size=16, width=768, layers=12, heads=12,
                          output_dim=512),
                 L14=dict(patch_size=14, width=1024, layers=24, heads=16,
                          output_dim=768))[arch]
    if layers:
        sizes['layers'] = layers
    torch.manual_seed(0)
    vis = VisionTransformer(image_size=image_size, mlp_ratio=4.0,
                            act_layer=QuickGELU, output_tokens=True,
                            **sizes)
    with torch.no_grad():  # random, not the zero / identity initialisation
        for p in vis.parameters():
            p.normal_(0, 0.02)
    return vis.eval(), sizes


@pytest.mark.parametrize('arch,image_size,layers', [
    ('B16', 224, None),          # ViT-B/16, square
    ('B16', (224, 320), None),   # non-square grid 14 x 20
    ('L14', 224, 6),             # ViT-L/14 widths (6 of its 24 blocks)
    ('L14', (196, 252), 6),      # non-square 14 x 18
])
def test_clip_vit_equals_open_clips_visual_tower(arch, image_size, layers):
    vis, sizes = _open_clip_visual(arch, image_size, layers)
    state = {'visual.' + k: v for k, v in vis.state_dict().items()}
    ours = CLIPViT(arch='ViT-B/16' if arch == 'B16' else 'ViT-L/14',
                   img_size=image_size, num_layers=sizes['layers'])
    ours.load_state_dict(convert_clip_visual(state), strict=True)
    ours.eval()
    hw = (image_size, image_size) if isinstance(image_size, int) \
        else image_size
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        pooled, tokens = vis(x)
        out = ours.forward_wsss(x)
    torch.testing.assert_close(out['pooled'], pooled, atol=1e-4, rtol=1e-4)
    # open_clip's tokens: ln_post of the patch tokens, (B, N, width)
    ours_tokens = out['tokens'].flatten(2).transpose(1, 2)
    torch.testing.assert_close(ours_tokens, tokens, atol=1e-4, rtol=1e-4)
    gh, gw = hw[0] // sizes['patch_size'], hw[1] // sizes['patch_size']
    assert out['grid'] == (gh, gw)


def test_clip_vit_attention_layouts_and_position_resize():
    vis, sizes = _open_clip_visual('B16', 224, layers=2)
    state = {'visual.' + k: v for k, v in vis.state_dict().items()}
    ours = CLIPViT(arch='ViT-B/16', num_layers=2, aux_layer=-1)
    ours.load_state_dict(convert_clip_visual(state), strict=True)
    ours.eval()
    x = torch.randn(1, 3, 160, 96)  # 10 x 6 grid: position embedding resized
    with torch.no_grad():
        mean = ours.forward_wsss(x, with_attn='mean')['attns']
        summed = ours.forward_wsss(x, with_attn='sum')['attns']
    assert mean[0].shape == (1, 61, 61)
    torch.testing.assert_close(summed[1], 12 * mean[1])
    torch.testing.assert_close(mean[0].sum(-1), torch.ones(1, 61))
    # the resize is CLIP-ES's bilinear one: a grid that is already right is
    # untouched, and a constant embedding stays constant
    from mmseg_wsss.models.backbones.clip_vit import resize_pos_embed_2d
    pos = torch.ones(1, 1 + 14 * 14, 4)
    torch.testing.assert_close(
        resize_pos_embed_2d(pos, (14, 14), (10, 6), 'bilinear'),
        torch.ones(1, 61, 4))


def test_hugging_face_layout_loads_to_the_same_weights():
    vis, sizes = _open_clip_visual('B16', 224, layers=2)
    sd = vis.state_dict()
    hf = {'vision_model.embeddings.patch_embedding.weight': sd['conv1.weight'],
          'vision_model.embeddings.class_embedding': sd['class_embedding'],
          'vision_model.embeddings.position_embedding.weight':
          sd['positional_embedding'],
          'vision_model.pre_layrnorm.weight': sd['ln_pre.weight'],
          'vision_model.pre_layrnorm.bias': sd['ln_pre.bias'],
          'vision_model.post_layernorm.weight': sd['ln_post.weight'],
          'vision_model.post_layernorm.bias': sd['ln_post.bias'],
          'visual_projection.weight': sd['proj'].t()}
    for i in range(2):
        src = f'transformer.resblocks.{i}.'
        dst = f'vision_model.encoder.layers.{i}.'
        for a, b in (('ln_1', 'layer_norm1'), ('ln_2', 'layer_norm2'),
                     ('attn.out_proj', 'self_attn.out_proj'),
                     ('mlp.c_fc', 'mlp.fc1'), ('mlp.c_proj', 'mlp.fc2')):
            for kind in ('weight', 'bias'):
                hf[f'{dst}{b}.{kind}'] = sd[f'{src}{a}.{kind}']
        for kind in ('weight', 'bias'):
            q, k, v = sd[f'{src}attn.in_proj_{kind}'].chunk(3)
            hf[f'{dst}self_attn.q_proj.{kind}'] = q
            hf[f'{dst}self_attn.k_proj.{kind}'] = k
            hf[f'{dst}self_attn.v_proj.{kind}'] = v
    a = convert_clip_visual({'visual.' + k: v for k, v in sd.items()})
    b = convert_clip_visual(hf)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_pretrained_file_loads_through_the_safe_loader(tmp_path):
    vis, sizes = _open_clip_visual('B16', 224, layers=2)
    path = str(tmp_path / 'clip.pth')
    torch.save({'visual.' + k: v for k, v in vis.state_dict().items()},
               path)
    ours = CLIPViT(arch='ViT-B/16', num_layers=2, aux_layer=-1, img_size=320,
                   pretrained=path)
    ours.init_weights()  # 14x14 position embedding resized to 20x20
    assert ours.pos_embed.shape == (1, 401, 768)
    torch.testing.assert_close(ours.proj, vis.proj)
    # a TorchScript archive is refused unless trusted
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    jit = str(tmp_path / 'jit.pt')
    scripted.save(jit)
    bad = CLIPViT(arch='ViT-B/16', num_layers=2, aux_layer=-1,
                  pretrained=jit)
    with pytest.raises(ValueError, match='TorchScript archive'):
        bad.init_weights()


def test_wsss_segmentors_run_on_clip():
    """CLIPViT has the WSSSViT contract: the CAM baseline (and so CoSA,
    APC, ACR) trains on it."""
    from mmseg.registry import MODELS

    from .conftest import tiny_cam_model_cfg
    cfg = tiny_cam_model_cfg()
    cfg['backbone'] = dict(type='CLIPViT', arch=None, img_size=64,
                           patch_size=8, embed_dims=32, num_layers=3,
                           num_heads=2, proj_dims=16, aux_layer=-2)
    cfg['regularizers'] = [dict(type='ACRLoss', loss_weight=1.0)]
    model = MODELS.build(cfg)
    model.init_weights()
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for lab in ([1., 0., 0., 1.], [0., 1., 0., 0.]):
        s = SegDataSample()
        s.gt_img_labels = torch.tensor(lab)
        s.valid_mask = PixelData(data=torch.ones(1, 64, 64))
        s.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
        samples.append(s)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(6):
        losses = model.loss(x, samples)
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(float(total))
    assert 'loss_acr' in losses or any('acr' in k for k in losses)
    assert totals[-1] < 0.9 * totals[0], totals


# ------------------------------------------------------------ text
def test_reference_words():
    assert len(VOC_WORDS) == 20 and VOC_WORDS[14].startswith('person with')
    assert len(VOC_BG_WORDS) == 25 and len(COCO_BG_WORDS) == 23
    assert 'keyboard' not in COCO_BG_WORDS and 'sign' not in COCO_BG_WORDS
    words = coco_words()
    assert len(words) == 80 and 'sknowboard' in words
    assert words[0] == 'person with clothes,people,human'


def test_text_tool_round_trips_with_a_random_open_clip(tmp_path):
    """The file the tool writes holds what open_clip's text tower gives for
    each template and word (normalised, averaged, normalised), loads with
    the safe loader, and is checked against the model."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'clip_text_tool', osp.join(REPO, 'tools', 'clip_text_embeddings.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    words = tmp_path / 'classes.txt'
    words.write_text('red cube\nblue ball\n')
    out = str(tmp_path / 'text.pth')
    tool.main(['--random-init', '3', '--classes', str(words), '--bg', 'voc',
               '--template', 'a photo of a {}.', '--template',
               'a {} in the scene.', '--out', out])
    bank = load_text_bank(out, num_classes=2, dims=512)
    assert bank['fg'].shape == (2, 512) and bank['bg'].shape == (25, 512)
    assert bank['fg_names'] == ['red cube', 'blue ball']
    assert bank['checkpoint_sha256'] == 'random'
    # by hand, with the same random tower
    model, tok = tool.build_clip('ViT-B-16', seed=3)
    with torch.no_grad():
        e = model.encode_text(tok(['a photo of a blue ball.',
                                   'a blue ball in the scene.'])).float()
    e = e / e.norm(dim=-1, keepdim=True)
    row = e.mean(0) / e.mean(0).norm()
    torch.testing.assert_close(bank['fg'][1], row, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='has 2 foreground rows, the model '
                       '20 classes'):
        load_text_bank(out, num_classes=20)
    with pytest.raises(ValueError, match='768-d'):
        load_text_bank(out, dims=768)
    # a checkpoint on disk: the text weights are read from it (provenance)
    ckpt = str(tmp_path / 'clip.pth')
    torch.save(model.state_dict(), ckpt)
    out2 = str(tmp_path / 'text2.pth')
    tool.main(['--checkpoint', ckpt, '--classes', str(words), '--bg', 'none',
               '--template', 'a photo of a {}.', '--template',
               'a {} in the scene.', '--out', out2])
    bank2 = load_text_bank(out2)
    torch.testing.assert_close(bank2['fg'], bank['fg'])
    assert bank2['bg'].shape == (0, 512)
    assert len(bank2['checkpoint_sha256']) == 64


def test_tool_refuses_a_template_without_a_slot(tmp_path, capsys):
    import subprocess
    proc = subprocess.run(
        [sys.executable, 'tools/clip_text_embeddings.py', '--random-init',
         '0', '--template', 'no slot', '--out', str(tmp_path / 'x.pth')],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'has no {} for the class word' in \
        proc.stderr
