"""Any registered mmseg / mmpretrain / timm backbone behind the WSSS contract.

A WSSS segmentor needs from its backbone one call, ``forward_wsss(x)``,
returning ``tokens`` (the map the CAM / patch head reads), ``aux_tokens``
(the aux CAM head's), ``outs`` (what the decode head reads) and ``grid``, plus
the input multiple its inference pads to. :class:`WSSSViT` provides them
itself (and, only it, attention maps and the class token for ACR / GETAM).
Every other backbone returns a tuple of (B, C, h, w) maps; the ``wsss`` key of
its config declares which map is which::

    backbone=dict(
        type='mmpretrain.ConvNeXt', arch='tiny', out_indices=(0, 1, 2, 3),
        wsss=dict(cam=-1, aux=-2, decode=(0, 1, 2, 3), stride=32))

:func:`build_wsss_backbone` builds the backbone as usual (its modules,
``init_cfg`` and state-dict keys are untouched) and gives the instance the
:class:`WSSSOutputsMixin` methods. That is the whole adapter: the segmentors
never branch on the backbone type.
"""
from contextlib import contextmanager
from typing import Sequence, Union

import torch

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from mmseg.registry import MODELS
from torch import Tensor

WSSS_KEYS = ('cam', 'aux', 'decode', 'stride')


class WSSSOutputsMixin:
    """``forward_wsss`` / ``wsss_stride`` for a backbone that returns a tuple
    of maps (mixed into the built instance's class)."""

    has_attention = False

    @property
    def wsss_stride(self) -> int:
        return self._wsss['stride']

    def wsss_channels(self, which: str):
        """Channels of the map ``backbone.wsss.<which>`` names (``'cam'``,
        ``'aux'``), found by :func:`probe_outputs` when the backbone was
        built; None when unknown."""
        chans = self._wsss.get('channels')
        if not chans:
            return None
        idx = self._wsss[which]
        return chans[idx if len(chans) > 1 else 0]

    def _wsss_maps(self, x: Tensor) -> list:
        outs = self(x)
        if isinstance(outs, Tensor):
            outs = [outs]
        outs = list(outs)
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor) or o.dim() != 4:
                got = type(o).__name__ if not isinstance(o, Tensor) else \
                    f'a {o.dim()}-D tensor'
                raise TypeError(
                    f'{self._wsss["name"]} output {i} is {got}, not a (B, C, '
                    'h, w) map. Configure the backbone to return feature '
                    "maps (mmpretrain VisionTransformer: out_type='featmap'; "
                    "mmseg VisionTransformer: output_cls_token=False; "
                    "TIMMBackbone: features_only=True)")
        return outs

    def forward_wsss(self, x: Tensor,
                     with_attn: Union[bool, str] = False) -> dict:
        """The WSSS outputs (see :meth:`WSSSViT.forward_wsss`); ``attns``
        and ``cls_token`` are None."""
        if with_attn:
            raise RuntimeError(
                f'{self._wsss["name"]} gives no attention maps; ACR and '
                'GETAM need WSSSViT (it loads timm, mmpretrain, mmseg and '
                'DINOv2 ViT checkpoints)')
        outs = self._wsss_maps(x)
        m = self._wsss
        pick = (lambda i: outs[i]) if len(outs) > 1 else (lambda i: outs[0])
        tokens = pick(m['cam'])
        decode = m['decode']
        if decode is None:
            decoded = tuple(outs)
        elif isinstance(decode, int):
            decoded = (pick(decode), )
        else:
            decoded = tuple(pick(i) for i in decode)
        return dict(
            outs=decoded,
            tokens=tokens,
            aux_tokens=pick(m['aux']) if m['aux'] is not None else None,
            cls_token=None,
            attns=None,
            grid=tuple(tokens.shape[-2:]))


_adapted = {}


def _adapted_class(cls):
    if cls not in _adapted:
        _adapted[cls] = type(cls.__name__, (WSSSOutputsMixin, cls),
                             {'__module__': cls.__module__})
    return _adapted[cls]


def build_wsss_backbone(cfg: dict) -> nn.Module:
    """Build a backbone for a WSSS segmentor.

    Args:
        cfg (dict): Any registered backbone config. A backbone without
            ``forward_wsss`` (anything but :class:`WSSSViT`) takes the
            optional key ``wsss``: ``cam`` (index of the map the CAM / patch
            head reads; default -1), ``aux`` (the aux CAM head's; default
            -2; the same map when there is only one), ``decode`` (int or
            indices the decode head reads; default all), ``stride`` (input
            multiple: the output stride of the coarsest map, e.g. 32 for
            ResNet / ConvNeXt / Swin, 16 for ViT-B/16, 14 for DINOv2;
            default 32).

    Raises:
        ValueError: ``wsss`` given to :class:`WSSSViT` or unknown ``wsss``
            keys.
    """
    cfg = dict(cfg)
    mapping = cfg.pop('wsss', None)
    backbone = MODELS.build(cfg)
    name = type(backbone).__name__
    if hasattr(backbone, 'forward_wsss'):
        if mapping:
            raise ValueError(f'{name} declares its WSSS outputs itself; '
                             'remove backbone.wsss')
        return backbone
    mapping = dict(mapping or {})
    unknown = set(mapping) - set(WSSS_KEYS)
    if unknown:
        raise ValueError(f'unknown backbone.wsss keys {sorted(unknown)}; '
                         f'known: {", ".join(WSSS_KEYS)}')
    mapping.setdefault('cam', -1)
    mapping.setdefault('aux', -2)
    mapping.setdefault('decode', None)
    mapping['name'] = str(cfg.get('type'))
    backbone.__class__ = _adapted_class(type(backbone))
    backbone._wsss = mapping
    probe_outputs(backbone, stride_given='stride' in mapping)
    mapping.setdefault('stride', 32)
    return backbone


def probe_outputs(backbone: nn.Module, stride_given: bool = True) -> None:
    """One forward of the built backbone on a small random image (eval mode,
    no grad; BN statistics untouched): records each output's channels and
    stride in ``backbone._wsss`` and checks the ``backbone.wsss`` positions
    against the number of outputs, so a wrong index fails here with the fix
    instead of deep in a matmul. Without an explicit ``stride`` the coarsest
    output's is used. A backbone that does not run on the probe sizes is
    left unchecked."""
    m = backbone._wsss
    was_training = backbone.training
    backbone.eval()
    outs = None
    try:
        for size in (64, 224):
            try:
                with torch.no_grad():
                    outs = backbone._wsss_maps(torch.rand(1, 3, size, size))
                break
            except TypeError:
                raise  # not (B, C, h, w) maps: the message says what to do
            except Exception:  # noqa: B902  (sizes some backbones refuse)
                outs = None
    finally:
        backbone.train(was_training)
    if outs is None:
        return
    n = len(outs)
    m['channels'] = [int(o.shape[1]) for o in outs]
    m['strides'] = [int(round(size / o.shape[-1])) for o in outs]
    listing = ', '.join(f'{i}: {c} ch / stride {s}' for i, (c, s) in
                        enumerate(zip(m['channels'], m['strides'])))
    for key in ('cam', 'aux', 'decode'):
        idxs = m[key]
        if idxs is None or n == 1:
            continue
        for i in ([idxs] if isinstance(idxs, int) else list(idxs)):
            if not -n <= i < n:
                raise ValueError(
                    f'backbone.wsss.{key}={idxs!r}: position {i} is out of '
                    f'range: {m["name"]} returns {n} maps ({listing}). The '
                    'positions index the tuple the backbone returns, not '
                    'stage numbers (with out_indices=(1, 3), stage 3 is '
                    'position 1 or -1).')
    if not stride_given:
        m['stride'] = max(m['strides'])


def require_attention(backbone: nn.Module, needs: Sequence[str]) -> None:
    """Refuse, when the model is built, parts that need attention maps and
    the class token on a backbone without them.

    Raises:
        ValueError: naming the parts and the backbone to use instead.
    """
    if not needs or getattr(backbone, 'has_attention', False):
        return
    name = getattr(backbone, '_wsss', {}).get('name', type(backbone).__name__)
    raise ValueError(
        f'{", ".join(needs)} need(s) attention maps and the class token, '
        f'which {name} does not give. Use backbone=dict(type=\'WSSSViT\', '
        '...) with the same checkpoint: WSSSViT loads ViT weights in timm, '
        'mmpretrain, mmseg and DINOv2 layouts (pretrained=... or '
        "init_cfg=dict(type='Pretrained', checkpoint=...)).")


@contextmanager
def preserve_bn_stats(module: nn.Module):
    """Run a no-grad pseudo-label pass in train mode without it touching
    the BatchNorm running statistics: for the pass, each BN module in
    training mode updates throw-away copies of its buffers (the originals
    keep their values and their autograd version, which a training forward
    earlier in the step may have saved)."""
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm)
             and m.training and m.track_running_stats]
    names = ('running_mean', 'running_var', 'num_batches_tracked')
    saved = [{n: getattr(m, n) for n in names} for m in norms]
    for m, bufs in zip(norms, saved):
        for n, b in bufs.items():
            if b is not None:
                setattr(m, n, b.clone())
    try:
        yield
    finally:
        for m, bufs in zip(norms, saved):
            for n, b in bufs.items():
                setattr(m, n, b)


@MODELS.register_module()
class WSSSDecodeInputs(nn.Module):
    """A WSSS backbone config as a plain mmseg backbone whose ``forward``
    returns exactly the maps the WSSS model's decode head reads
    (``backbone.wsss.decode``): lets mmseg's ``EncoderDecoder`` run the same
    backbone and decode head (``tools/benchmark.py``'s supervised
    reference).

    Args:
        backbone (dict): A WSSS backbone config (``WSSSViT``, ``CLIPViT`` or
            any backbone with ``backbone.wsss``).

    Example:
        >>> backbone = dict(type='WSSSDecodeInputs', backbone=dict(
        ...     type='WSSSViT', embed_dims=192, num_layers=4, num_heads=3))
    """

    def __init__(self, backbone: dict):
        super().__init__()
        self.backbone = build_wsss_backbone(backbone)

    def init_weights(self):
        if hasattr(self.backbone, 'init_weights'):
            self.backbone.init_weights()

    def forward(self, x: Tensor) -> tuple:
        return self.backbone.forward_wsss(x)['outs']
