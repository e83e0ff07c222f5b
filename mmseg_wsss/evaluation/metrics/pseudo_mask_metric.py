from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable


def confusion_per_threshold(cams: torch.Tensor, img_labels: torch.Tensor,
                            gt: torch.Tensor, thresholds: torch.Tensor,
                            ignore_index: int = 255) -> torch.Tensor:
    """Confusion matrices of CAM pseudo-masks for several background scores.

    For threshold t, pixel p is predicted ``1 + argmax_k cam_k(p)`` over the
    present classes if ``max_k cam_k(p) > t``, else background (0).

    Args:
        cams (Tensor): (K, H, W) normalised CAMs.
        img_labels (Tensor): (K,) multi-hot labels (ground-truth image labels:
            the standard protocol).
        gt (Tensor): (H, W) ground-truth mask.
        thresholds (Tensor): (T,) background scores.

    Returns:
        Tensor: (T, K+1, K+1) int64, rows = ground truth, cols = prediction.
    """
    k = cams.shape[0]
    c = k + 1
    cams = cams * img_labels.view(-1, 1, 1).to(cams.dtype)
    score, idx = cams.flatten(1).max(dim=0)
    gt = gt.flatten().long()
    keep = gt != ignore_index
    score, idx, gt = score[keep], idx[keep] + 1, gt[keep]
    if gt.numel() and int(gt.max()) >= c:
        raise ValueError(f'ground truth has label {int(gt.max())} but the '
                         f'CAMs have only {k} classes')
    pred = torch.where(score[None] > thresholds[:, None], idx[None], 0)
    t_idx = torch.arange(len(thresholds), device=gt.device)[:, None]
    flat = (t_idx * c + gt[None]) * c + pred
    return torch.bincount(flat.flatten(), minlength=len(thresholds) * c * c
                          ).view(len(thresholds), c, c)


def confusion_own_background(scores: torch.Tensor, img_labels: torch.Tensor,
                             gt: torch.Tensor,
                             ignore_index: int = 255) -> torch.Tensor:
    """Confusion matrix of a model's own pseudo-masks: the argmax of its
    (K+1, H, W) scores (background first) over the background and the
    present classes -- APC's label merge.

    Returns:
        Tensor: (K+1, K+1) int64, rows = ground truth, cols = prediction.
    """
    c = scores.shape[0]
    keep_cls = torch.cat([img_labels.new_ones(1), img_labels]).to(scores)
    masked = torch.where(keep_cls.view(-1, 1, 1) > 0, scores,
                         scores.new_tensor(float('-inf')))
    pred = masked.argmax(dim=0).flatten()
    gt = gt.flatten().long()
    keep = gt != ignore_index
    pred, gt = pred[keep], gt[keep]
    if gt.numel() and int(gt.max()) >= c:
        raise ValueError(f'ground truth has label {int(gt.max())} but the '
                         f'pseudo scores have only {c - 1} classes')
    return torch.bincount(gt * c + pred, minlength=c * c).view(c, c)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU (nan for classes absent from both gt and prediction)."""
    inter = np.diagonal(conf, axis1=-2, axis2=-1).astype(np.float64)
    union = conf.sum(-1) + conf.sum(-2) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return inter / union


@METRICS.register_module()
class PseudoMaskMetric(BaseMetric):
    """CAM / pseudo-mask quality with a background-threshold sweep.

    The standard WSSS protocol (ACR, ToCo, AFA): on the *train* set, each
    image's normalised CAMs (``cams`` field of the predictions, classes
    masked by the ground-truth image labels) get a constant background score
    t; the mIoU is computed for every t in ``bg_thrs`` and the best one is
    reported with its threshold.

    Models that decide the background themselves (APC: per-patch softmax
    over K+1 classes) also put their own (K+1, H, W) scores, background
    first, in ``pseudo_scores``; the metric then reports, besides the
    sweep, ``own_mIoU``: the mIoU of their argmax over the background and
    the present classes (APC's label-merged pseudo-masks, no threshold).

    Args:
        bg_thrs (Sequence[float], optional): Background scores to sweep.
            Defaults to 0.00, 0.05, ..., 0.95.
        cam_key (str): Prediction field holding (K, H, W) maps. Defaults to
            ``'cams'``.
        ignore_index (int): Defaults to 255.
        prefix (str): Metric-name prefix. Defaults to ``'cam'``.

    Returns (from :meth:`compute_metrics`): ``mIoU`` (best, in %) and
    ``bg_thr`` (its threshold), and ``own_mIoU`` with ``pseudo_scores``; the
    whole sweep and the per-class IoUs are printed to the log.

    Example:
        >>> val_cfg = dict(type='WSSSValLoop', extra_evals=[dict(
        ...     name='train', dataloader=train_eval_dataloader,
        ...     evaluator=dict(type='PseudoMaskMetric'),
        ...     image_labels_known=True)])
    """
    default_prefix = 'cam'

    def __init__(self,
                 bg_thrs: Optional[Sequence[float]] = None,
                 cam_key: str = 'cams',
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if bg_thrs is None:
            bg_thrs = np.round(np.arange(0.0, 0.951, 0.05), 2)
        self.bg_thrs = [float(t) for t in bg_thrs]
        self.cam_key = cam_key
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if self.cam_key not in sample:
                raise KeyError(
                    f'prediction has no {self.cam_key!r}; PseudoMaskMetric '
                    'needs a WSSS segmentor with a CAM head')
            cams = sample[self.cam_key]['data'].float()
            thrs = torch.tensor(self.bg_thrs, device=cams.device)
            gt = sample['gt_sem_seg']['data'].squeeze(0).to(cams.device)
            labels = sample['gt_img_labels'].to(cams.device)
            conf = dict(sweep=confusion_per_threshold(
                cams, labels, gt, thrs, self.ignore_index).cpu().numpy())
            if 'pseudo_scores' in sample:
                conf['own'] = confusion_own_background(
                    sample['pseudo_scores']['data'].float(), labels, gt,
                    self.ignore_index).cpu().numpy()
            # one running sum per rank keeps memory flat on large train sets
            if not self.results:
                self.results.append(conf)
                continue
            total = self.results[0]
            if total.keys() != conf.keys():
                raise ValueError('some predictions carry pseudo_scores and '
                                 'some do not')
            for key in total:
                total[key] += conf[key]

    def _class_table(self, ious: np.ndarray) -> str:
        classes = (self.dataset_meta or {}).get('classes')
        table = PrettyTable(field_names=['Class', 'IoU'])
        for i, iou in enumerate(ious):
            name = classes[i] if classes and i < len(classes) else str(i)
            table.add_row([name, f'{100 * iou:.2f}'])
        return table.get_string()

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        ious = iou_from_confusion(  # (T, C)
            np.sum([r['sweep'] for r in results], axis=0))
        mious = np.nanmean(ious, axis=1)
        best = int(np.nanargmax(mious))
        sweep = PrettyTable(field_names=['bg_thr'] + [f'{t:.2f}'
                                                      for t in self.bg_thrs])
        sweep.add_row(['mIoU'] + [f'{100 * m:.1f}' for m in mious])
        logger = MMLogger.get_current_instance()
        print_log('pseudo-mask mIoU per background threshold:\n' +
                  sweep.get_string(), logger=logger)
        print_log(
            f'pseudo-mask IoU per class at the best background threshold '
            f'{self.bg_thrs[best]:.2f}:\n' + self._class_table(ious[best]),
            logger=logger)
        out = OrderedDict(
            mIoU=round(100 * float(mious[best]), 2),
            bg_thr=self.bg_thrs[best])
        if 'own' in results[0]:
            own = iou_from_confusion(
                np.sum([r['own'] for r in results], axis=0))
            print_log(
                "pseudo-mask IoU per class with the model's own background "
                '(pseudo_scores):\n' + self._class_table(own), logger=logger)
            out['own_mIoU'] = round(100 * float(np.nanmean(own)), 2)
        return out
