"""Pictures of CAMs, pseudo-labels and predictions (cv2 only)."""
from typing import Optional, Sequence

import cv2
import numpy as np


def colorize_mask(mask: np.ndarray, palette: Sequence[Sequence[int]],
                  ignore_index: int = 255) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) RGB; ignore pixels are white."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)[:256]
    lut[ignore_index] = 255
    return lut[mask.astype(np.uint8)]


def overlay_heatmap(img: np.ndarray, heat: np.ndarray,
                    alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heat-map (jet colours) over an RGB image."""
    colour = cv2.applyColorMap(
        (np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return (alpha * colour[..., ::-1] + (1 - alpha) * img).astype(np.uint8)


def _titled(img: np.ndarray, title: str, width: int) -> np.ndarray:
    h = img.shape[0]
    if img.shape[1] != width:
        img = cv2.resize(img, (width, int(round(h * width / img.shape[1]))),
                         interpolation=cv2.INTER_NEAREST)
    bar = np.full((18, width, 3), 255, np.uint8)
    cv2.putText(bar, title[:max(4, width // 7)], (2, 13),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def draw_cam_panel(img: np.ndarray,
                   cams: np.ndarray,
                   img_labels: np.ndarray,
                   classes: Sequence[str],
                   palette: Sequence[Sequence[int]],
                   pseudo_label: Optional[np.ndarray] = None,
                   pred: Optional[np.ndarray] = None,
                   gt: Optional[np.ndarray] = None,
                   width: int = 192,
                   refined_label: Optional[np.ndarray] = None) -> np.ndarray:
    """One row: image | CAM of each present class | pseudo-label |
    refined pseudo-label | prediction | ground truth.

    Args:
        img (np.ndarray): (H, W, 3) RGB uint8.
        cams (np.ndarray): (K, H, W) normalised CAMs.
        img_labels (np.ndarray): (K,) multi-hot labels (which CAMs to draw).
        classes, palette: Dataset metainfo (background first).
        pseudo_label, pred, gt, refined_label (np.ndarray, optional): (H, W)
            label maps.
    """
    tiles = [_titled(img, 'image', width)]
    for k in np.flatnonzero(img_labels):
        tiles.append(
            _titled(overlay_heatmap(img, cams[k]), f'CAM {classes[k + 1]}',
                    width))
    for name, m in (('pseudo-label', pseudo_label),
                    ('refined PL', refined_label), ('prediction', pred),
                    ('ground truth', gt)):
        if m is not None:
            tiles.append(_titled(colorize_mask(m, palette), name, width))
    height = max(t.shape[0] for t in tiles)
    tiles = [
        np.pad(t, ((0, height - t.shape[0]), (0, 2), (0, 0)),
               constant_values=255) for t in tiles
    ]
    return np.concatenate(tiles, axis=1)


def predict_panel(model,
                  data: dict,
                  classes: Sequence[str],
                  palette: Sequence[Sequence[int]],
                  refine=None) -> np.ndarray:
    """Run ``model.test_step`` on one collated sample and draw its panel:
    image | CAM per present class | two-threshold CAM pseudo-label (the
    model's ``train_cfg`` thresholds) | prediction | ground truth.

    The CAMs and their pseudo-label are the unrefined ones. With ``refine``
    (True or a dict of feature-refinement arguments, see
    ``feat_refine_args``) a second pass with ``test_cfg.feat_refine`` set to
    it adds the pseudo-label of the feature-affinity-refined CAMs."""
    import mmcv
    import torch

    from mmseg_wsss.models.pseudo_labels import cam_to_label
    thr = getattr(model, 'train_cfg', None) or {}
    test_cfg = model.test_cfg
    saved = test_cfg.get('feat_refine')

    def run(feat_refine):
        test_cfg['feat_refine'] = feat_refine
        try:
            with torch.no_grad():
                out = model.test_step(data)[0]
        finally:
            test_cfg['feat_refine'] = saved
        cams = out.cams.data.float()
        labels = out.gt_img_labels.to(cams.device)
        pseudo = cam_to_label(cams[None], labels[None],
                              thr.get('low_thr', 0.25),
                              thr.get('high_thr', 0.7))[0]
        return out, cams, labels, pseudo.cpu().numpy()

    out, cams, labels, pseudo = run(None)
    refined = run(refine)[3] if refine not in (None, False) else None
    img = mmcv.imread(out.img_path, channel_order='rgb')
    gt = out.gt_sem_seg.data[0].cpu().numpy() if 'gt_sem_seg' in out \
        else None
    return draw_cam_panel(img, cams.cpu().numpy(), labels.cpu().numpy(),
                          classes, palette, pseudo,
                          out.pred_sem_seg.data[0].cpu().numpy(), gt,
                          refined_label=refined)


def refine_setting(test_cfg, train_cfg):
    """The feature-refinement settings of a model's (or a model config's)
    ``test_cfg.feat_refine``, else ``train_cfg.feat_refine``, or None."""
    for cfg in (test_cfg, train_cfg):
        if cfg and cfg.get('feat_refine') not in (None, False):
            return cfg['feat_refine']
    return None


def stack_panels(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Stack panel rows of different widths into one picture."""
    width = max(r.shape[1] for r in rows)
    return np.concatenate([
        np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)),
               constant_values=255) for r in rows
    ])
