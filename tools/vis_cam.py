"""Draw CAMs, CAM pseudo-labels and predictions of a trained model.

    python tools/vis_cam.py CONFIG CHECKPOINT --out DIR [--split val|train]
                            [--num 8] [--ids ID ...]

Writes one PNG per image (image | CAM per present class | two-threshold CAM
pseudo-label | refined pseudo-label | prediction | ground truth) and
``summary.png`` stacking them. The pseudo-labels use the model's
``train_cfg`` thresholds; the refined one is drawn when the config sets
``feat_refine`` (``test_cfg``, else ``train_cfg``) or with ``--refine``
(those settings, else the defaults): the CAMs propagated over the
backbone's token affinity. Nothing is written outside ``--out``.
"""
import argparse
import os
import os.path as osp

import cv2
import mmengine
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmseg_wsss  # noqa: F401
from mmseg_wsss.utils import (add_trust_argument, apply_trust_arguments,
                              init_trained_model)
from mmseg_wsss.visualization import (predict_panel, refine_setting,
                                      stack_panels)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--split', choices=['val', 'train'], default='val',
                        help="'train' uses the train-set eval dataloader")
    parser.add_argument('--num', type=int, default=8)
    parser.add_argument('--ids', nargs='+', help='image ids to draw')
    parser.add_argument('--device', default='cuda' if
                        torch.cuda.is_available() else 'cpu')
    parser.add_argument('--refine', action='store_true',
                        help='draw the feature-affinity-refined pseudo-label '
                        'even when the config does not set feat_refine')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_trust_argument(parser)
    return parser.parse_args()


def build_dataset(cfg, split):
    if split == 'val':
        return DATASETS.build(cfg.val_dataloader.dataset)
    extra = [e for e in cfg.val_cfg.get('extra_evals', [])
             if e['name'] == 'train']
    if not extra:
        raise ValueError('the config has no train-set eval dataloader '
                         "(val_cfg.extra_evals with name='train')")
    return DATASETS.build(extra[0]['dataloader']['dataset'])


def main():
    args = parse_args()
    apply_trust_arguments(args.trust_checkpoint)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = init_trained_model(cfg, args.checkpoint, args.device)
    dataset = build_dataset(cfg, args.split)
    meta = dataset.metainfo
    ids = [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))]
    if args.ids:
        unknown = sorted(set(args.ids) - set(ids))
        if unknown:
            raise KeyError(f'ids not in the {args.split} set: {unknown}')
        indices = [ids.index(i) for i in args.ids]
    else:
        indices = list(range(min(args.num, len(dataset))))

    refine = refine_setting(getattr(model, 'test_cfg', None),
                            getattr(model, 'train_cfg', None))
    if args.refine and refine is None:
        refine = True
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for idx in mmengine.track_iter_progress(indices):
        panel = predict_panel(model, pseudo_collate([dataset[idx]]),
                              meta['classes'], meta['palette'],
                              refine=refine)
        cv2.imwrite(osp.join(args.out, f'{ids[idx]}.png'), panel[..., ::-1])
        rows.append(panel)
    summary = stack_panels(rows)
    cv2.imwrite(osp.join(args.out, 'summary.png'), summary[..., ::-1])
    print(f'\nwrote {len(rows)} pictures and summary.png to {args.out}')


if __name__ == '__main__':
    main()
