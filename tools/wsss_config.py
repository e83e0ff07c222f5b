"""Turn a stock mmseg 1.x config into a WSSS config, in one step.

    python tools/wsss_config.py STOCK_CONFIG --method cam|cosa|apc
        [--data voc|coco] [--recipe WSSS_CONFIG] [--out FILE]
        [--cfg-options k=v ...]

``STOCK_CONFIG`` is any mmseg config, e.g.
``mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py`` or a file
of your own. The written config inherits it and takes from it the backbone
(with its pretrained weights, ``init_cfg`` or the model's ``pretrained``)
and the decode head (with ``num_classes`` set to the WSSS classes); every
WSSS part -- segmentor, CAM / patch heads, losses, data, schedule, hooks,
loops, metrics -- comes from a *recipe*, one of this project's configs
(``--recipe``; by default the paper recipe of ``--method`` on ``--data``:
``configs/cosa/cosa_vitb_voc.py`` for CoSA on VOC, and so on).

What it works out for you, from one forward of the stock backbone on a
small random image (no weights are loaded):

- ``backbone.wsss``: the CAM head reads the last map the backbone returns,
  the aux CAM head the one before, the decode head all of them; ``stride``
  is the last map's;
- the CAM / aux / patch heads' ``in_channels``.

The written file lists these with the channels and strides found, so it
reads as a recipe you can edit. Without ``--out`` it is printed.
"""
import argparse
import copy
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import mmseg_wsss  # noqa: F401  (registers, mmseg:: bases without pkg_resources)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPES = {
    ('cam', 'voc'): 'configs/baseline/cam_vitb_voc.py',
    ('cam', 'coco'): 'configs/baseline/cam_vitb_coco.py',
    ('cosa', 'voc'): 'configs/cosa/cosa_vitb_voc.py',
    ('cosa', 'coco'): 'configs/cosa/cosa_vitb_coco.py',
    ('apc', 'voc'): 'configs/apc/apc_vitb_voc.py',
    ('apc', 'coco'): 'configs/apc/apc_vitb_coco.py',
}
#: model keys that belong to the method (the recipe), not to the network
METHOD_KEYS = {
    'CAMSegmentor': ('cam_head', 'aux_cam_head', 'token_head',
                     'regularizers', 'train_cfg', 'test_cfg'),
    'CoSA': ('cam_head', 'aux_cam_head', 'momentum', 'dynamic_threshold',
             'raw', 'loss_s2c', 'loss_csc', 'regularizers', 'train_cfg',
             'test_cfg'),
    'APC': ('patch_head', 'loss_pcl', 'regularizers', 'train_cfg',
            'test_cfg'),
}
#: top-level keys taken from the recipe (data, schedule, loops, hooks)
RECIPE_KEYS = ('crop_size', 'train_pipeline', 'test_pipeline',
               'train_dataloader', 'val_dataloader', 'test_dataloader',
               'val_evaluator', 'test_evaluator', 'train_cfg', 'val_cfg',
               'test_cfg', 'optim_wrapper', 'param_scheduler',
               'default_hooks', 'custom_hooks', 'model_wrapper_cfg',
               'randomness', 'log_processor')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('stock', help='stock mmseg config (path or '
                        'mmseg::folder/file.py)')
    parser.add_argument('--method', choices=['cam', 'cosa', 'apc'],
                        help='WSSS method (picks the default recipe)')
    parser.add_argument('--data', choices=['voc', 'coco'], default='voc')
    parser.add_argument('--recipe', help='a WSSS config of this project '
                        'whose method, data and schedule to use (default: '
                        'the paper recipe of --method on --data)')
    parser.add_argument('--out', help='write the config here (default: '
                        'print it)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the stock config first')
    args = parser.parse_args(argv)
    if not args.recipe and not args.method:
        parser.error('give --method (or --recipe)')
    return args


def probe_backbone(backbone_cfg: dict):
    """(channels, strides) of each map the backbone returns, from one
    forward on a random image (no weights loaded)."""
    from mmseg.registry import MODELS
    cfg = copy.deepcopy(backbone_cfg)
    cfg.pop('init_cfg', None)
    cfg.pop('pretrained', None)
    cfg.pop('wsss', None)
    net = MODELS.build(cfg)
    net.eval()  # (some backbones' train() returns None)
    last_err = None
    for size in (64, 224, 512):
        try:
            with torch.no_grad():
                outs = net(torch.rand(1, 3, size, size))
            break
        except Exception as e:  # noqa: B902  (sizes some backbones refuse)
            last_err = e
    else:
        raise SystemExit(f'the stock backbone {cfg["type"]} did not run on a '
                         f'random image: {last_err}')
    outs = [outs] if isinstance(outs, torch.Tensor) else list(outs)
    bad = [i for i, o in enumerate(outs)
           if not isinstance(o, torch.Tensor) or o.dim() != 4]
    if bad:
        raise SystemExit(
            f'the stock backbone returns something other than (B, C, h, w) '
            f'maps at positions {bad}; configure it to return feature maps '
            "(mmseg VisionTransformer: output_cls_token=False)")
    return ([o.shape[1] for o in outs], [size // o.shape[-1] for o in outs])


def load_stock(name: str) -> Config:
    """A config file, or ``package::path`` as a ``_base_`` would name it."""
    if '::' not in name:
        return Config.fromfile(name)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'stock.py')
        with open(path, 'w') as f:
            f.write(f'_base_ = [{name!r}]\n')
        return Config.fromfile(path)


def convert(stock: Config, recipe: Config):
    """The WSSS config as ``(model, rest, summary)``: ``model`` merges into
    the stock model dict (what changes: type, preprocessor, backbone.wsss,
    heads, method parts); ``rest`` replaces the stock data, schedule, hooks
    and loops with the recipe's (``_delete_`` where the stock has the
    key)."""
    stock_model = stock.model
    method = recipe.model.type
    if method not in METHOD_KEYS:
        raise SystemExit(f'the recipe model type {method!r} is not one of '
                         f'{sorted(METHOD_KEYS)}')
    if isinstance(stock_model.get('decode_head'), list):
        raise SystemExit('the stock config has a cascade of decode heads; '
                         'a WSSS model takes one decode head')
    backbone = stock_model.backbone.to_dict()
    channels, strides = probe_backbone(backbone)
    n = len(channels)
    cam = n - 1
    aux = n - 2 if n > 1 else n - 1
    rm = recipe.model.to_dict()
    model = dict(type=method)
    pre = dict(type='WSSSDataPreprocessor',
               size=tuple(rm['data_preprocessor'].get(
                   'size', recipe.get('crop_size', (448, 448)))))
    model['data_preprocessor'] = pre
    model['backbone'] = dict(wsss=dict(
        cam=cam, aux=aux, decode=tuple(range(n)), stride=strides[cam]))
    if stock_model.get('auxiliary_head') is not None:
        model['auxiliary_head'] = None
    if stock_model.get('neck') is not None:
        model['neck'] = None
    for key in METHOD_KEYS[method]:
        if key in rm:
            model[key] = copy.deepcopy(rm[key])
    k = None
    for key in ('cam_head', 'aux_cam_head', 'patch_head'):
        if isinstance(model.get(key), dict):
            model[key]['in_channels'] = channels[
                aux if key == 'aux_cam_head' else cam]
            k = model[key].get('num_classes', k)
    if rm.get('decode_head') is not None and \
            stock_model.get('decode_head') is not None:
        loss = copy.deepcopy(rm['decode_head']['loss_decode'])
        if isinstance(loss, dict):
            loss = dict(_delete_=True, **loss)
        model['decode_head'] = dict(num_classes=k + 1, loss_decode=loss)
    elif stock_model.get('decode_head') is not None:
        model['decode_head'] = None
    for key in ('train_cfg', 'test_cfg'):
        value = dict(model.get(key) or {})
        value.pop('mode', None)
        value.pop('crop_size', None)
        value.pop('stride', None)
        model[key] = dict(_delete_=True, **value)
    rest = dict(custom_imports=dict(imports=['mmseg_wsss'],
                                    allow_failed_imports=False))
    for key in RECIPE_KEYS:
        if key not in recipe:
            continue
        value = copy.deepcopy(recipe[key])
        value = value.to_dict() if hasattr(value, 'to_dict') else value
        if isinstance(value, dict) and key in stock:
            value = dict(_delete_=True, **value)
        rest[key] = value
    summary = dict(channels=channels, strides=strides, method=method)
    return model, rest, summary


def fmt(obj, indent: int = 0, refs=(), lead: int = 0,
        width: int = 79) -> str:
    """Python source for a config value: ``dict(k=v)`` calls, one line when
    it fits (``lead`` characters precede it on its line), one item per line
    at ``indent + 4`` otherwise; a value equal to one in ``refs``
    (``(value, name)`` pairs) is written as that name."""
    for value, name in refs:
        if isinstance(obj, list) and obj == value:
            return name
    pad = ' ' * (indent + 4)
    if isinstance(obj, dict):
        if not all(isinstance(k, str) and k.isidentifier() for k in obj):
            return '{' + ', '.join(f'{k!r}: {fmt(v, 0, refs, 0, 10**6)}'
                                   for k, v in obj.items()) + '}'
        one = 'dict(' + ', '.join(f'{k}={fmt(v, 0, refs, 0, 10**6)}'
                                  for k, v in obj.items()) + ')'
        if lead + len(one) <= width:
            return one
        return 'dict(\n' + ',\n'.join(
            f'{pad}{k}=' + fmt(v, indent + 4, refs, indent + 5 + len(k),
                               width) for k, v in obj.items()) + ')'
    if isinstance(obj, (list, tuple)):
        op, cl = ('[', ']') if isinstance(obj, list) else ('(', ')')
        tail = ',' if isinstance(obj, tuple) and len(obj) == 1 else ''
        one = op + ', '.join(fmt(v, 0, refs, 0, 10**6)
                             for v in obj) + tail + cl
        if lead + len(one) <= width:
            return one
        return op + '\n' + ',\n'.join(
            pad + fmt(v, indent + 4, refs, indent + 4, width)
            for v in obj) + tail + cl
    return repr(obj)


def render(stock_name: str, recipe_name: str, model: dict, rest: dict,
           summary: dict, argv) -> str:
    ch = ', '.join(f'{i}: {c} ch / stride {s}' for i, (c, s) in enumerate(
        zip(summary['channels'], summary['strides'])))
    cmd = ' '.join(['python tools/wsss_config.py'] + list(argv))
    lines = [
        f'# {summary["method"]} on the stock mmseg config',
        f'#   {stock_name}',
        f'# with the WSSS recipe of {recipe_name}. Written by',
        f'#   {cmd}',
        '# The stock config keeps the backbone (and its pretrained weights)',
        '# and the decode head; the model block below turns them into a WSSS',
        '# model, the rest is the recipe\'s data, schedule, hooks and loops.',
        f'_base_ = [{stock_name!r}]',
        '',
        '# Backbone outputs found (one forward on a random image):',
        f'#   {ch}',
        '# backbone.wsss: positions in the tuple the backbone returns (not',
        '# stage numbers); in_channels: the channels of the map a head reads.',
        'model = ' + fmt(model, 0, (), 8),
        '',
        f'# ---- from the recipe {recipe_name} ----',
    ]
    refs = [(rest[k], k) for k in ('train_pipeline', 'test_pipeline')
            if k in rest]
    for key, value in rest.items():
        own = [r for r in refs if r[1] != key]
        lines.append(f'{key} = {fmt(value, 0, own, len(key) + 3)}')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    init_default_scope('mmseg')
    stock = load_stock(args.stock)
    if args.cfg_options:
        stock.merge_from_dict(args.cfg_options)
    recipe_name = args.recipe or RECIPES[(args.method, args.data)]
    recipe_path = recipe_name if osp.isfile(recipe_name) else osp.join(
        ROOT, recipe_name)
    recipe = Config.fromfile(recipe_path)
    if args.method and args.recipe:
        want = dict(cam='CAMSegmentor', cosa='CoSA', apc='APC')[args.method]
        if recipe.model.type != want:
            raise SystemExit(f'--recipe {args.recipe} is a '
                             f'{recipe.model.type} config, not {want}')
    model, rest, summary = convert(stock, recipe)
    # stock overrides go into the written config too, so that it builds
    # the network the tool probed
    for key, value in (args.cfg_options or {}).items():
        parts = key.split('.')
        if parts[0] != 'model':
            rest[parts[0]] = rest.get(parts[0], {})
            node = rest[parts[0]]
        else:
            node = model
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    text = render(args.stock, recipe_name, model, rest, summary, argv)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
        print(f'wrote {args.out}')
    else:
        print(text)


if __name__ == '__main__':
    main()
