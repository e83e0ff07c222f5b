import copy
import os
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmseg_wsss  # noqa: F401  (registers everything)
from mmseg_wsss.datasets import make_toy_voc
from mmseg_wsss.models.utils.clip_text import random_text_bank  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED = osp.join(osp.dirname(REPO), 'shared')
DINOV2 = osp.join(SHARED, 'weights',
                  'vit_small_patch14_dinov2_imgfocus_timm.pth')
VOC_META = osp.join(SHARED, 'data', 'voc12_meta')
COCO128 = osp.join(SHARED, 'data', 'coco128_voc')

torch.set_num_threads(2)
init_default_scope('mmseg')


def free_port() -> int:
    """A TCP port nobody listens on now (for torch.distributed.run in
    tests; a fixed port can still be held by the previous test's store)."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def require_shared(path):
    """Fail (not skip) when the shared assets CI provides are missing, unless
    WSSS_ALLOW_MISSING_SHARED=1 says this machine has none."""
    if osp.exists(path):
        return
    if os.environ.get('WSSS_ALLOW_MISSING_SHARED') == '1':
        pytest.skip(f'{path} not present (WSSS_ALLOW_MISSING_SHARED=1)')
    pytest.fail(f'{path} is missing: put ../shared beside the repository '
                'or set WSSS_ALLOW_MISSING_SHARED=1')


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy_voc'))
    make_toy_voc(root, num_train=40, num_val=12, size_range=(96, 128),
                 seed=1)
    return root


@pytest.fixture(autouse=True)
def reset_iter():
    """Every test starts seeded (transforms use Python's random) and, for
    tests that call model.loss() directly, at iteration 0."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    yield
    hub.update_info('iter', 0)


TINY_VIT = dict(
    type='WSSSViT',
    img_size=64,
    patch_size=8,
    embed_dims=32,
    num_layers=3,
    num_heads=2,
    mlp_ratio=2,
    aux_layer=-2)


TINY_PREPROCESSOR = dict(
    type='WSSSDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    size=(64, 64))


def tiny_cam_model_cfg(num_classes=4, warmup_iters=0, decode_head=True):
    cfg = dict(
        type='CAMSegmentor',
        data_preprocessor=copy.deepcopy(TINY_PREPROCESSOR),
        backbone=copy.deepcopy(TINY_VIT),
        cam_head=dict(type='CAMHead', in_channels=32,
                      num_classes=num_classes),
        aux_cam_head=dict(type='CAMHead', in_channels=32,
                          num_classes=num_classes),
        decode_head=dict(
            type='LargeFOVHead',
            in_channels=32,
            channels=32,
            dilation=2,
            num_classes=num_classes + 1,
            loss_decode=dict(type='BalancedCrossEntropyLoss',
                             loss_name='loss_seg')) if decode_head else None,
        train_cfg=dict(warmup_iters=warmup_iters, cam_scales=(1.0, 0.5)),
        test_cfg=dict(scales=(1.0, ), flip=True))
    return cfg


def count_backbone_calls(model):
    """Record the ``with_attn`` argument of every backbone forward."""
    calls = []
    orig = model.backbone.forward_wsss

    def spy(x, with_attn=False, **kwargs):
        calls.append(with_attn)
        return orig(x, with_attn=with_attn, **kwargs)

    model.backbone.forward_wsss = spy
    return calls


def toy_train_loader(toy_root, batch_size=2):
    """The tiny CAM config's training dataloader config on the session's
    synthetic set, in this process (no workers)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/baseline/cam_tiny_toy.py'))
    loader = cfg.train_dataloader
    loader.dataset.data_root = toy_root
    loader.update(num_workers=0, persistent_workers=False,
                  batch_size=batch_size)
    return loader


def toy_batch(toy_root, batch_size=2):
    """One training batch of :func:`toy_train_loader` (seed 0)."""
    return next(iter(Runner.build_dataloader(
        toy_train_loader(toy_root, batch_size), seed=0)))


def train_steps(model, batch, steps, lr, on_losses=None, after_backward=None,
                after_step=None):
    """``steps`` AdamW steps of ``model`` (its trainable parameters) on one
    batch, at iterations 0, 1, ... (the MessageHub's ``iter``), minimising
    the sum of the ``loss*`` terms; returns that sum at each step.

    ``on_losses(losses)`` sees each step's loss dict, ``after_backward()``
    runs between backward and the optimizer step, ``after_step()`` after it
    (e.g. CoSA's EMA update)."""
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr)
    hub = MessageHub.get_current_instance()
    model.train()
    totals = []
    for it in range(steps):
        hub.update_info('iter', it)
        data = model.data_preprocessor(copy.deepcopy(batch), training=True)
        losses = model(**data, mode='loss')
        if on_losses is not None:
            on_losses(losses)
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        opt.zero_grad()
        total.backward()
        if after_backward is not None:
            after_backward()
        opt.step()
        if after_step is not None:
            after_step()
        totals.append(float(total))
    return totals


def predict_first(model, batch):
    """``model.test_step`` (eval mode, no grad) on the batch's first image;
    returns its data sample."""
    model.eval()
    with torch.no_grad():
        out = model.test_step(dict(inputs=[batch['inputs'][0]],
                                   data_samples=[batch['data_samples'][0]]))
    return out[0]
