"""Export pseudo-labels of a trained WSSS model as VOC-layout palette PNGs.

    python tools/gen_pseudo_labels.py CONFIG CHECKPOINT --out DIR
        [--source cam|seg|own|an|on] [--crf] [--feat-refine]
        [--scales 1.0 0.5 1.5] [--no-flip] [--bg-thr 0.45] [--ann-file LIST]
        [--workers 4] [--launcher pytorch]

This is the "multi-stage" path: the export is a dataset root that mmseg's
stock ``PascalVOCDataset`` reads directly, to train a fully supervised
DeepLab / SegFormer on::

    DIR/SegmentationClass/<id>.png          palette PNG, values 0..K
    DIR/ImageSets/Segmentation/<list>.txt   the exported ids (written last:
                                            its presence marks a complete
                                            export)
    DIR/JPEGImages -> the source image folder (symlink)
    DIR/summary.json                        settings and, with ground truth,
                                            mIoU and per-class IoU
    DIR/export_settings.json                what a resumed run must match

Sources: ``cam`` (multi-scale CAMs of present classes against a constant
background ``--bg-thr``), ``seg`` (the segmentation head, as ``predict``
uses it), ``own`` (the model's own pseudo-masks, for models that decide the
background themselves: APC's label-merged patch softmax, what its decoder
trains on), ``an`` / ``on`` (CoSA's assignment / online network's head).
The image-level labels of the (training) images mask absent classes unless
``--no-label-mask``. ``--crf`` refines with DenseCRF (the config's
``model.test_cfg.crf`` settings if it has them); ``--feat-refine`` (or
``model.test_cfg.feat_refine`` in the config) propagates the CAMs over the
backbone's token affinity first (training-free, ``pseudo_labels/
feat_affinity.py``).

Resumable: files already in ``DIR/SegmentationClass`` are kept (written
atomically, so an interrupted run never leaves a broken PNG); they still
count in the final mIoU. Ctrl-C or SIGTERM stops the workers at once and
exits with status 130 (the id list and ``summary.json`` are missing until
a rerun of the same command completes the export). ``--workers`` processes run the CRF and write the
files; ``--launcher pytorch`` (``torch.distributed.run``) shards the images
over processes/GPUs.
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2
import mmengine
import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose, pseudo_collate
from mmengine.dist import get_dist_info, init_dist
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from PIL import Image

import mmseg_wsss  # noqa: F401
from mmseg_wsss.evaluation.crf import DenseCRF, cam_probs
from mmseg_wsss.models.pseudo_labels import label_merge
from mmseg_wsss.models.segmentors import image_labels_known
from mmseg_wsss.utils import (add_trust_argument, apply_trust_arguments,
                              close_distributed, init_trained_model,
                              setup_cpu_distributed)
from mmseg_wsss.utils.checkpoint import sha256_file
from mmseg_wsss.utils.run_guard import write_atomic
from mmseg_wsss.utils.workers import WorkerPool, interruptible
from mmseg_wsss.visualization import refine_setting


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="trained weights; 'none' for a "
                        'training-free model (CLIP-ES: its config names the '
                        'CLIP weights)')
    parser.add_argument('--out', required=True, help='export root')
    parser.add_argument('--source', choices=['cam', 'seg', 'own', 'an', 'on'],
                        default='cam')
    parser.add_argument('--crf', action='store_true', help='DenseCRF')
    parser.add_argument('--crf-image', choices=['rgb', 'clip-es-reference'],
                        default='rgb',
                        help="the image the CRF's colour term sees: the RGB "
                        "photo, or CLIP-ES's reference quirk (BGR minus "
                        'its mean, cast to uint8 so negatives wrap; for '
                        'faithfulness checks only)')
    parser.add_argument('--feat-refine', action='store_true',
                        help='propagate the maps over the backbone token '
                        'affinity (the config\'s test_cfg / train_cfg '
                        'feat_refine settings, else the defaults)')
    parser.add_argument('--scales', type=float, nargs='+',
                        help="default: train_cfg.cam_scales for 'cam', "
                        'test_cfg.scales otherwise')
    parser.add_argument('--no-flip', action='store_true')
    parser.add_argument('--bg-thr', type=float,
                        help="background score of the 'cam' source "
                        '(default: test_cfg.bg_thr or 0.45)')
    parser.add_argument('--ann-file', help='id list, relative to the data '
                        'root (default: the train dataloader\'s)')
    parser.add_argument('--no-label-mask', action='store_true',
                        help='do not use image-level labels')
    parser.add_argument('--limit', type=int, help='first N images only')
    parser.add_argument('--workers', type=int, default=2,
                        help='processes for CRF and writing (0: inline)')
    parser.add_argument('--device', default='cuda' if
                        torch.cuda.is_available() else 'cpu')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_trust_argument(parser)
    return parser.parse_args()


# ------------------------------------------------------------ dataset
def build_dataset(cfg, ann_file=None, limit=None):
    """The training images with the test pipeline; ground truth is loaded
    only when every image has a mask."""
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.pop('indices', None)
    if ann_file:
        ds_cfg['ann_file'] = ann_file
    ds_cfg['test_mode'] = True  # keep images with an empty label set
    pipeline = [
        t for t in cfg.val_dataloader.dataset.pipeline
        if t['type'] != 'LoadWSSSAnnotations'
    ]
    ds_cfg['pipeline'] = pipeline
    dataset = DATASETS.build(ds_cfg)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    has_gt = all(
        i.get('seg_map_path') and osp.isfile(i['seg_map_path'])
        for i in infos)
    if has_gt:
        dataset.pipeline = Compose(pipeline[:1] +
                                   [dict(type='LoadWSSSAnnotations')] +
                                   pipeline[1:])
    indices = list(range(len(dataset)))
    if limit:
        indices = indices[:limit]
    return dataset, infos, indices, has_gt


# ------------------------------------------------------------ workers
_CRF = None


def _init_worker(crf_cfg):
    global _CRF
    cv2.setNumThreads(1)
    _CRF = DenseCRF(**crf_cfg) if crf_cfg is not None else None


CLIP_ES_CRF_MEAN = (104.008, 116.669, 122.675)  # BGR


def crf_reference_image(bgr: np.ndarray) -> np.ndarray:
    """CLIP-ES's CRF image: the BGR photo minus its mean, cast to uint8
    the way numpy casts floats (truncation, negatives wrapping modulo 256).
    """
    x = np.trunc(bgr.astype(np.float64) - np.asarray(CLIP_ES_CRF_MEAN))
    return (x.astype(np.int64) % 256).astype(np.uint8)


def _confusion(pred, gt, num_classes):
    keep = gt != 255
    return np.bincount(
        num_classes * gt[keep].astype(np.int64) + pred[keep],
        minlength=num_classes**2).reshape(num_classes, num_classes)


def _read_png(path):
    return np.asarray(Image.open(path))


def process_one(task):
    """CRF (optional) -> argmax -> atomic palette PNG write -> confusion.

    ``task``: dict with ``out_path``, ``gt_path``, ``num_classes``,
    ``palette`` and, for a new file, ``probs`` (C, H, W) float16 over the
    classes ``channels`` and ``img_path``; without ``probs`` the existing
    file is only scored."""
    out_path, n = task['out_path'], task['num_classes']
    if task.get('probs') is not None:
        probs = task['probs'].astype(np.float32)
        if _CRF is not None:
            img = cv2.imread(task['img_path'], cv2.IMREAD_COLOR)
            img = crf_reference_image(img) if task.get('crf_image') == \
                'clip-es-reference' else img[..., ::-1]
            probs = _CRF(np.ascontiguousarray(img), probs)
        label = np.asarray(task['channels'], np.uint8)[probs.argmax(0)]
        png = Image.fromarray(label, mode='P')
        png.putpalette(task['palette'])
        tmp = out_path + '.tmp.png'
        png.save(tmp)
        os.replace(tmp, out_path)  # never leave a half-written PNG
    else:
        label = _read_png(out_path)
    if task.get('gt_path') is None:
        return None
    gt = _read_png(task['gt_path'])
    if gt.shape != label.shape:
        raise ValueError(f'{out_path}: shape {label.shape} differs from the '
                         f'ground truth {task["gt_path"]} {gt.shape}')
    return _confusion(label.astype(np.int64), gt, n)


# ------------------------------------------------------------ model
def model_probs(model, batch, source, bg_thr, label_mask, num_classes):
    """(C', H, W) probabilities at the original size and the class index of
    each channel."""
    # with label masking the maps of absent classes are never read: GETAM
    # computes only the present ones
    with torch.no_grad(), image_labels_known(model, label_mask):
        out = model.test_step(batch)[0]
    labels = out.gt_img_labels.float() if label_mask else None
    if source == 'cam':
        probs = cam_probs(out.cams.data.float(), bg_thr,
                          labels.to(out.cams.data.device)
                          if labels is not None else None)
    elif source == 'own':
        if 'pseudo_scores' not in out:
            sys.exit(f'--source own needs a model with its own pseudo-masks '
                     f'(predictions with pseudo_scores, e.g. APC); '
                     f'{type(model).__name__} has none: use --source cam '
                     f'or seg')
        scores = out.pseudo_scores.data.float()
        present = labels if labels is not None else \
            scores.new_ones(scores.shape[0] - 1)
        probs = label_merge(scores[None], present[None].to(scores),
                            return_scores=True)[0]
    else:
        logits = out.seg_logits.data.float()
        if labels is not None:
            absent = torch.cat([labels.new_zeros(1), 1 - labels]).bool()
            logits[absent.to(logits.device)] = -torch.inf
        probs = logits.softmax(0)
    channels = list(range(num_classes))
    if labels is not None:  # only background and present classes carry mass
        channels = [0] + [k + 1 for k in range(len(labels)) if labels[k]]
        probs = probs[channels]
    return probs.cpu().numpy().astype(np.float16), channels


def iou_table(conf, classes):
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    iou = np.where(present, inter / np.maximum(union, 1), np.nan)
    return float(np.nanmean(iou)), {
        c: (None if np.isnan(v) else round(float(v) * 100, 2))
        for c, v in zip(classes, iou)
    }


def file_fingerprint(path: str) -> str:
    """SHA-256 of a local checkpoint's bytes (a URL stands for itself)."""
    if '://' in path:
        return 'url:' + path
    return sha256_file(path)


def settings_diff(old: dict, new: dict, prefix: str = '') -> list:
    """``'key: old -> new'`` for every (nested) setting that differs."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, '<absent>'), new.get(k, '<absent>')
        if isinstance(a, dict) and isinstance(b, dict):
            out += settings_diff(a, b, f'{prefix}{k}.')
        elif a != b:
            out.append(f'{prefix}{k}: {a} -> {b}')
    return out


def main():
    args = parse_args()
    apply_trust_arguments(args.trust_checkpoint)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if args.launcher != 'none':
        # on CPU: a gloo group (mmengine's init_dist needs CUDA)
        if not setup_cpu_distributed(cfg, args.launcher):
            init_dist(args.launcher, backend='nccl')
    rank, world = get_dist_info()
    device = args.device
    if device == 'cuda' and world > 1:
        device = f'cuda:{torch.cuda.current_device()}'

    # model -------------------------------------------------------------
    test_cfg = dict(cfg.model.get('test_cfg') or {})
    crf_cfg = test_cfg.pop('crf', None)
    crf_cfg = dict(crf_cfg) if isinstance(crf_cfg, dict) else {}
    crf_cfg = crf_cfg if args.crf else None
    if crf_cfg is not None:  # fail now (install hint), not in the workers
        DenseCRF(**crf_cfg)
    if args.source == 'cam':
        scales = args.scales or cfg.model.get('train_cfg', {}).get(
            'cam_scales', test_cfg.get('scales', (1.0, )))
    else:
        scales = args.scales or test_cfg.get('scales', (1.0, ))
    test_cfg.update(scales=tuple(scales), flip=not args.no_flip)
    if args.feat_refine:
        test_cfg['feat_refine'] = refine_setting(
            test_cfg, cfg.model.get('train_cfg')) or True
    if args.source in ('an', 'on'):
        if cfg.model.type != 'CoSA':
            sys.exit(f"--source {args.source} needs a CoSA model, the config "
                     f'has {cfg.model.type}')
        test_cfg['predict_net'] = args.source
    cfg.model.test_cfg = test_cfg
    bg_thr = args.bg_thr if args.bg_thr is not None else test_cfg.get(
        'bg_thr', 0.45)
    # everything that decides a pixel of the output: resuming with any of
    # it changed would mix two models or settings in one export. Checked
    # before the model and the data are loaded, so a mismatch stops at once.
    model_cfg = cfg.model.to_dict()
    if args.checkpoint != 'none':  # the checkpoint rules
        model_cfg['backbone'].pop('pretrained', None)
    settings = json.loads(json.dumps(dict(
        checkpoint=(args.checkpoint if args.checkpoint == 'none' else
                    osp.abspath(args.checkpoint)),
        checkpoint_sha256=(None if args.checkpoint == 'none' else
                           file_fingerprint(args.checkpoint)),
        source=args.source, crf=crf_cfg, scales=list(scales),
        crf_image=args.crf_image if args.crf else None,
        flip=not args.no_flip, label_mask=not args.no_label_mask,
        bg_thr=bg_thr if args.source == 'cam' else None,
        model=model_cfg), default=str))
    settings_file = osp.join(args.out, 'export_settings.json')
    if rank == 0 and osp.isfile(settings_file):
        with open(settings_file) as f:
            changed = settings_diff(json.load(f), settings)
        if changed:
            sys.exit(f'{args.out} holds an export made with other settings '
                     '(earlier -> now):\n  ' + '\n  '.join(changed) +
                     '\nUse a new --out (finished files are only kept when '
                     'resuming the same export: same checkpoint content, '
                     'config and options).')
    model = init_trained_model(cfg, args.checkpoint, device)

    # data and output ---------------------------------------------------
    dataset, infos, indices, has_gt = build_dataset(cfg, args.ann_file,
                                                    args.limit)
    meta = dataset.metainfo
    classes, num_classes = meta['classes'], len(meta['classes'])
    palette = np.zeros((256, 3), np.uint8)
    palette[:num_classes] = np.asarray(meta['palette'][:num_classes])
    palette = palette.flatten().tolist()
    seg_dir = osp.join(args.out, 'SegmentationClass')
    list_dir = osp.join(args.out, 'ImageSets', 'Segmentation')
    ann_name = osp.basename(dataset.ann_file) or 'train.txt'
    if rank == 0:
        os.makedirs(seg_dir, exist_ok=True)
        os.makedirs(list_dir, exist_ok=True)
        img_dir = osp.dirname(infos[0]['img_path']) if infos else None
        link = osp.join(args.out, 'JPEGImages')
        if img_dir and not osp.lexists(link):
            os.symlink(osp.abspath(img_dir), link)
        if not osp.isfile(settings_file):
            write_atomic(settings_file, json.dumps(settings, indent=2))
        # an interrupted writer leaves at most a temporary file: drop it
        for name in os.listdir(seg_dir):
            if name.endswith('.tmp.png'):
                os.remove(osp.join(seg_dir, name))
    if world > 1:
        torch_dist.barrier()
    mine = indices[rank::world]
    out_path = {
        i: osp.join(seg_dir, infos[i]['img_id'] + '.png')
        for i in mine
    }
    done = [i for i in mine if osp.isfile(out_path[i])]
    todo = [i for i in mine if not osp.isfile(out_path[i])]
    if rank == 0:
        print(f'{len(indices)} images, {len(done) * world} already exported '
              f'(kept), {len(todo)} to do on this process; source '
              f'{args.source}, scales {tuple(scales)}, flip '
              f'{not args.no_flip}, CRF {"on" if args.crf else "off"}, '
              f'ground truth {"yes" if has_gt else "no"}')

    def task(i, probs=None, channels=None):
        return dict(out_path=out_path[i],
                    gt_path=infos[i]['seg_map_path'] if has_gt else None,
                    num_classes=num_classes, palette=palette, probs=probs,
                    channels=channels, img_path=infos[i]['img_path'],
                    crf_image=args.crf_image)

    conf = np.zeros((num_classes, num_classes), np.int64)

    def collect(c):
        nonlocal conf
        if c is not None:
            conf += c

    pool = WorkerPool(args.workers, _init_worker, (crf_cfg, )) \
        if args.workers > 0 else None
    if pool is None:
        _init_worker(crf_cfg)
    run = (lambda t: pool.apply_async(process_one, (t, ))) if pool else \
        (lambda t: process_one(t))
    pending = []
    try:
        with interruptible():
            for i in done:  # already exported: only score them
                pending.append(run(task(i)))
                if pool is not None and \
                        len(pending) > 4 * max(args.workers, 1):
                    collect(pending.pop(0).get())
                elif pool is None:
                    collect(pending.pop())
            bar = mmengine.ProgressBar(len(todo)) if rank == 0 else None
            for i in todo:
                probs, channels = model_probs(
                    model, pseudo_collate([dataset[i]]), args.source,
                    bg_thr, not args.no_label_mask, num_classes)
                pending.append(run(task(i, probs, channels)))
                if pool is not None and \
                        len(pending) > 4 * max(args.workers, 1):
                    collect(pending.pop(0).get())  # bound the memory
                elif pool is None:
                    collect(pending.pop())
                if bar is not None:
                    bar.update()
            for p in pending:
                collect(p.get() if pool is not None else p)
    except KeyboardInterrupt:
        if pool is not None:
            pool.kill()
        written = sum(name.endswith('.png') and not name.endswith('.tmp.png')
                      for name in os.listdir(seg_dir))
        print(f'\ninterrupted: {written} of {len(indices)} pseudo-labels are '
              f'in {seg_dir} (each complete); the id list and summary.json '
              'are written only when all are done. Run the same command '
              'again to finish the export.', file=sys.stderr, flush=True)
        sys.exit(130)
    except BaseException:
        if pool is not None:
            pool.kill()
        raise
    if pool is not None:
        pool.close()

    if world > 1:
        t = torch.from_numpy(conf)
        torch_dist.all_reduce(t)
        conf = t.numpy()
        close_distributed()
    if rank != 0:
        return
    summary = dict(
        config=args.config, checkpoint=args.checkpoint, source=args.source,
        crf=crf_cfg if args.crf else None, scales=list(scales),
        flip=not args.no_flip, label_mask=not args.no_label_mask,
        bg_thr=bg_thr if args.source == 'cam' else None,
        num_images=len(indices))
    print(f'\nwrote {len(indices)} pseudo-labels to {seg_dir}')
    if has_gt:
        miou, per_class = iou_table(conf, classes)
        summary.update(mIoU=round(miou * 100, 2), per_class_iou=per_class)
        print(f'pseudo-label mIoU against the ground truth: '
              f'{miou * 100:.2f}')
        print('  ' + '  '.join(f'{c} {v}' for c, v in per_class.items()))
    # the id list and the summary are written last, and atomically: a
    # dataset root that lists its ids is complete
    write_atomic(osp.join(list_dir, ann_name),
                 ''.join(infos[i]['img_id'] + '\n' for i in indices))
    write_atomic(osp.join(args.out, 'summary.json'),
                 json.dumps(summary, indent=2))


if __name__ == '__main__':
    main()
