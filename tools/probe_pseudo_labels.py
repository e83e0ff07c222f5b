"""Where does a CAM-based WSSS model lose accuracy: in its pseudo-labels or
in its decoder? Measured on training crops whose masks are known.

    python tools/probe_pseudo_labels.py CONFIG CHECKPOINT [--out DIR]
        [--batches 12] [--steps 300] [--lr 1e-3] [--thrs 0.2 0.3 0.4 0.5]
        [--seed 0] [--device cpu] [--net auto|on|an] [--cfg-options k=v ...]

Needs ground-truth masks for the training images (only to measure; e.g. the
coco128 set). For a model with CAM pseudo-labels (the CAM baseline; CoSA):

1. draws ``--batches`` batches from the config's training pipeline, with the
   masks loaded and cropped with the images, and scores the CAMs that make
   the pseudo-labels in training on each crop against the masks: those of
   the network ``--net`` (``auto``: CoSA's assignment network ``an``, the
   online network ``on`` otherwise) at ``train_cfg``'s scales / flip --
   the main CAM ``raw``, ``refined`` over the network's tokens when
   ``train_cfg.feat_refine`` is set (as in training) and the ``aux`` CAM
   where the network has an aux CAM head. Single-threshold pseudo-labels
   at each of ``--thrs`` and at ``train_cfg``'s own (low, high) pair
   (``aux_low_thr`` / ``aux_high_thr`` for the aux CAM): mIoU, per-class
   IoU, foreground share (against the masks' share), coverage -- is the
   CAM's ranking or its calibration the limit? (CoSA's RAW weights and
   dynamic thresholds are not applied: the @train row uses the config's
   starting pair.)
2. trains fresh copies of the config's decode head for ``--steps`` on the
   backbone features of those crops (computed once with the checkpoint:
   meaningful as-is for a frozen backbone), once on the masks (this setup's
   ceiling) and once on the best pseudo-label, and evaluates both on the
   val set, label-free and label-masked.

Prints a table and writes ``DIR/probe.json``.
"""
import argparse
import copy
import json
import os
import os.path as osp
import random
import sys
import time

import mmengine
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.runner import Runner, load_checkpoint

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
import mmseg_wsss  # noqa: E402,F401
from mmseg_wsss.evaluation.metrics import \
    iou_from_confusion as _class_iou  # noqa: E402
from mmseg_wsss.models.pseudo_labels import (cam_to_label,  # noqa: E402
                                             normalize_cam)
from mmseg_wsss.utils import stack_img_labels, valid_mask_of  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--out', default=None, help='folder for probe.json')
    p.add_argument('--batches', type=int, default=12,
                   help='training batches to draw (config batch size)')
    p.add_argument('--steps', type=int, default=300,
                   help='decoder training steps over the cached batches')
    p.add_argument('--lr', type=float, default=1e-3,
                   help='AdamW learning rate of the fresh decoders')
    p.add_argument('--thrs', type=float, nargs='+',
                   default=[0.2, 0.3, 0.4, 0.5],
                   help='background thresholds of the pseudo-labels')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument('--net', choices=('auto', 'on', 'an'), default='auto',
                   help="network whose CAMs are scored: 'an' CoSA's "
                   "assignment network, 'on' the online network; 'auto' "
                   'the one that makes the pseudo-labels in training')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, as tools/train.py')
    return p.parse_args(argv)


def confusion(pred, gt, n, ignore_index=255):
    """(n, n) int64 confusion matrix, rows ground truth, columns prediction,
    over the pixels where neither is ``ignore_index``."""
    m = (gt != ignore_index) & (pred != ignore_index)
    idx = gt[m].long() * n + pred[m].long()
    return torch.bincount(idx, minlength=n * n).reshape(n, n).cpu()


def iou_from_confusion(conf):
    """Per-class IoU (%) (NaN where a class is in neither) and their mean:
    the evaluation's :func:`iou_from_confusion`, in percent."""
    iou = torch.from_numpy(_class_iou(conf.numpy())) * 100
    return iou, float(np.nanmean(iou.numpy()))


def fg_share(labels, ignore_index=255):
    m = labels != ignore_index
    return float(((labels > 0) & m).sum()) / max(int(m.sum()), 1)


def build(cfg_path, ckpt, device, options=None):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(cfg_path)
    if options:
        cfg.merge_from_dict(options)
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'multi_scale_cam'):
        raise SystemExit(
            f'{cfg_path}: {type(model).__name__} has no CAM pseudo-labels '
            '(multi_scale_cam); this probe covers the CAM baseline and CoSA. '
            "For APC's own masks use tools/gen_pseudo_labels.py --source "
            'own, which scores them against the masks too.')
    load_checkpoint(model, ckpt, map_location='cpu', logger='silent')
    return cfg, model.to(device).eval()


def with_masks(pipeline):
    """The training pipeline with the masks loaded right after the image,
    so that every geometric transform moves them with it."""
    pipeline = copy.deepcopy(list(pipeline))
    if not any('Annotations' in t['type'] for t in pipeline):
        at = next((i + 1 for i, t in enumerate(pipeline)
                   if t['type'] == 'LoadImageFromFile'), 1)
        pipeline.insert(at, dict(type='LoadWSSSAnnotations'))
    return pipeline


def loader(cfg_loader, seed, pipeline=None):
    cfg_loader = copy.deepcopy(cfg_loader)
    cfg_loader.update(num_workers=0, persistent_workers=False)
    if pipeline is not None:
        cfg_loader.dataset.pipeline = pipeline
    return Runner.build_dataloader(cfg_loader, seed=seed)


def pick_net(model, net='auto'):
    """``(name, network)`` whose CAMs make the training pseudo-labels:
    CoSA's assignment network for ``'an'`` (and ``'auto'`` on CoSA), the
    model itself (the online network) for ``'on'``."""
    has_an = getattr(model, 'assignment_net', None) is not None
    if net == 'auto':
        net = 'an' if has_an else 'on'
    if net == 'an':
        if not has_an:
            raise SystemExit(
                f'--net an: {type(model).__name__} has no assignment '
                "network (CoSA's); use --net on")
        return 'an', model.assignment_net
    return 'on', model


def train_cams(model, net, inputs, labels, refine):
    """Normalised CAMs (B, K, H, W) of ``net`` on ``inputs`` at
    ``train_cfg``'s scales / flip: ``raw`` (main head), ``refined`` (over
    the network's scale-1 tokens, when ``refine``) and ``aux`` (when the
    network has an aux CAM head)."""
    with_aux = getattr(net, 'aux_cam_head', None) is not None
    maps, tokens = model.net_multi_scale_maps(net, inputs, with_aux)
    cams = dict(raw=normalize_cam(maps['cam']))
    if refine:
        with torch.no_grad():
            if tokens is None:  # no scale-1 pass among cam_scales
                tokens = net.backbone.forward_wsss(inputs)['tokens']
            cams['refined'] = normalize_cam(model.refine_by_features(
                cams['raw'], inputs, refine, feats=tokens, present=labels))
    if with_aux:
        cams['aux'] = normalize_cam(maps['aux_cam'])
    return cams


def cache_train(model, cfg, args):
    """Backbone features, masks, labels and CAMs (raw, refined, aux) of
    ``args.batches`` training batches."""
    dl = loader(cfg.train_dataloader, args.seed,
                with_masks(cfg.train_dataloader.dataset.pipeline))
    refine = model.train_cfg.get('feat_refine')
    _, net = pick_net(model, args.net)
    batches, it = [], iter(dl)
    bar = mmengine.ProgressBar(args.batches)
    for _ in range(args.batches):
        data = model.data_preprocessor(next(it), True)
        inputs, samples = data['inputs'], data['data_samples']
        if isinstance(inputs, dict):  # multi-view pipelines
            inputs = inputs['weak']
        if not all('gt_sem_seg' in s for s in samples):
            raise SystemExit(
                f'{args.config}: the training set has no masks to measure '
                'against (set data_prefix.seg_map_path to the mask folder)')
        with torch.no_grad():
            feats = model.online_forward(inputs)
            labels = stack_img_labels(samples, model.num_classes)
            cams = train_cams(model, net, inputs, labels, refine)
        batches.append(dict(
            outs=[o.detach() for o in feats['outs']],
            gt=torch.stack([s.gt_sem_seg.data[0] for s in samples]).long(),
            valid=valid_mask_of(samples, inputs.shape[-2:], inputs.device),
            labels=labels, cams=cams))
        bar.update()
    print()
    return batches


def train_pairs(train_cfg):
    """The training's own ``(low, high)`` background thresholds per CAM
    kind, where ``train_cfg`` has them."""
    pairs = {}
    for kinds, keys in ((('raw', 'refined'), ('low_thr', 'high_thr')),
                        (('aux', ), ('aux_low_thr', 'aux_high_thr'))):
        if all(k in train_cfg for k in keys):
            pairs.update({kind: tuple(train_cfg[k] for k in keys)
                          for kind in kinds})
    return pairs


def score_pseudo_labels(batches, thrs, n, train_thrs=None):
    """Pseudo-labels of every CAM kind against the masks: one background
    threshold each of ``thrs`` and, where ``train_thrs`` (kind -> pair)
    has the kind, the training's own ``(low, high)`` pair (the band
    between them ignored: scored on the pixels it labels, ``coverage``
    says how many)."""
    rows = {}
    gt_fg = np.mean([fg_share(b['gt']) for b in batches])
    train_thrs = train_thrs or {}
    for kind in batches[0]['cams']:
        pairs = [(f'{t:g}', t, t) for t in thrs]
        if kind in train_thrs:
            pairs.append(('train', *train_thrs[kind]))
        for name, low, high in pairs:
            conf = torch.zeros(n, n, dtype=torch.long)
            fg, covered, total = [], 0, 0
            for b in batches:
                pl = cam_to_label(b['cams'][kind], b['labels'], low, high,
                                  b['valid'])
                conf += confusion(pl, b['gt'], n)
                fg.append(fg_share(pl))
                known = b['gt'] != 255
                covered += int(((pl != 255) & known).sum())
                total += int(known.sum())
            iou, miou = iou_from_confusion(conf)
            rows[f'{kind}@{name}'] = dict(
                cam=kind, low_thr=low, high_thr=high, mIoU=miou,
                fg_share=float(np.mean(fg)), gt_fg_share=float(gt_fg),
                coverage=covered / max(total, 1),
                per_class=[None if np.isnan(v) else round(float(v), 2)
                           for v in iou.tolist()])
    return rows


def cache_val(model, cfg):
    """Backbone features of every val image (padded to the patch size),
    with its mask and image labels."""
    dl = loader(cfg.val_dataloader, 0)
    out = []
    bar = mmengine.ProgressBar(len(dl.dataset))
    multiple = getattr(model, 'patch_size', 1)
    for batch in dl:
        data = model.data_preprocessor(batch, False)
        for x, s in zip(data['inputs'], data['data_samples']):
            h, w = x.shape[-2:]
            x = F.pad(x[None], (0, (-w) % multiple, 0, (-h) % multiple))
            with torch.no_grad():
                outs = [o.detach() for o in model.online_forward(x)['outs']]
            out.append(dict(outs=outs, hw=(h, w), padded=x.shape[-2:],
                            gt=s.gt_sem_seg.data[0],
                            labels=s.gt_img_labels.float()))
            bar.update()
    print()
    return out, list(dl.dataset.metainfo.get('classes', ()))


def train_decoder(head_cfg, batches, target, steps, lr, seed):
    """A fresh decode head trained on the cached features of ``batches``
    towards ``target(batch)`` with the head's own loss(es)."""
    from mmseg.registry import MODELS
    torch.manual_seed(seed)
    head = MODELS.build(copy.deepcopy(head_cfg))
    head.to(batches[0]['gt'].device).train()
    losses = head.loss_decode
    losses = list(losses) if isinstance(losses, torch.nn.ModuleList) \
        else [losses]
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    for step in range(steps):
        b = batches[step % len(batches)]
        y = target(b)
        logits = F.interpolate(head(b['outs']), size=y.shape[-2:],
                               mode='bilinear', align_corners=False)
        loss = sum(fn(logits, y, ignore_index=255) for fn in losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def eval_decoder(head, val, n):
    """Val seg mIoU (%), label-free and with absent classes masked out."""
    res = {}
    for mode in ('label_free', 'label_masked'):
        conf = torch.zeros(n, n, dtype=torch.long)
        with torch.no_grad():
            for v in val:
                h, w = v['hw']
                logits = F.interpolate(
                    head(v['outs']), size=tuple(v['padded']),
                    mode='bilinear', align_corners=False)[..., :h, :w]
                logits = F.interpolate(logits, size=v['gt'].shape,
                                       mode='bilinear', align_corners=False)
                if mode == 'label_masked':
                    keep = torch.cat([v['labels'].new_ones(1), v['labels']])
                    logits[:, keep == 0] = float('-inf')
                conf += confusion(logits.argmax(1)[0], v['gt'], n)
        res[mode] = iou_from_confusion(conf)[1]
    return res


def main(argv=None):
    args = parse_args(argv)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.time()
    cfg, model = build(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    if model.decode_head is None:
        raise SystemExit(f'{args.config}: the model has no decode head')
    n = model.num_classes + 1
    net = pick_net(model, args.net)[0]
    print(f'caching {args.batches} training batches (CAMs of the '
          f'{dict(an="assignment", on="online")[net]} network) ...')
    batches = cache_train(model, cfg, args)
    rows = score_pseudo_labels(batches, args.thrs, n,
                               train_pairs(model.train_cfg))
    # the decoder's best target among the full-coverage (one-threshold)
    # pseudo-labels
    best = max((k for k in rows if not k.endswith('@train')),
               key=lambda k: rows[k]['mIoU'])
    print(f'{"pseudo-label":>16} {"mIoU":>6} {"fg":>5} {"cover":>5} '
          f'(masks: fg {rows[best]["gt_fg_share"]:.2f})')
    for k, r in rows.items():
        print(f'{k:>16} {r["mIoU"]:6.2f} {r["fg_share"]:5.2f} '
              f'{r["coverage"]:5.2f}' + ('  <- best' if k == best else ''))
    print('caching val features ...')
    val, classes = cache_val(model, cfg)
    b_kind, b_thr = rows[best]['cam'], rows[best]['low_thr']
    targets = dict(
        masks=lambda b: b['gt'],
        best_pseudo_label=lambda b: cam_to_label(
            b['cams'][b_kind], b['labels'], b_thr, b_thr, b['valid']))
    decoders = {}
    for name, target in targets.items():
        head = train_decoder(cfg.model.decode_head, batches, target,
                             args.steps, args.lr, args.seed)
        decoders[name] = eval_decoder(head, val, n)
        print(f'decoder on {name}: val seg mIoU label-free '
              f'{decoders[name]["label_free"]:.2f}, label-masked '
              f'{decoders[name]["label_masked"]:.2f}')
    result = dict(
        config=args.config, checkpoint=args.checkpoint, net=net,
        crops=sum(len(b['gt']) for b in batches), steps=args.steps,
        lr=args.lr, seed=args.seed, pseudo_labels=rows, best=best,
        decoders=decoders, classes=classes,
        wall_s=round(time.time() - t0, 1))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'probe.json'), 'w') as f:
            json.dump(result, f, indent=1)
        print(f'wrote {osp.join(args.out, "probe.json")}')
    return result


if __name__ == '__main__':
    main()
