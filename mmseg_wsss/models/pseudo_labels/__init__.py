"""Pure tensor functions that turn network outputs into pseudo-labels."""
from .cosa import raw_weights, seg_pseudo_label
from .apc import label_merge
from .par import par_refine
from .feat_affinity import feature_affinity_refine, token_affinity
from .getam import class_token_gradient_map
from .dynamic_threshold import (DynamicThreshold, fit_gmm_1d, fit_gmm_hist,
                                gmm_thresholds)
from .clip_es import (box_mask, caa_refine, clip_es_scores, minmax01,
                      sinkhorn_affinity, softmax_gradcam)
from .weclip import affinity_loss, affinity_targets, rfm_select
from .excel import (attribute_text_rows, excel_affinity,
                    feature_surgery_cams)
from .cam import (cam_to_label, cam_to_label_with_bg_threshold,
                  mask_cam_by_labels, multi_scale_flip, normalize_cam,
                  resize_to_multiple)

__all__ = [
    'affinity_loss', 'affinity_targets', 'rfm_select',
    'attribute_text_rows', 'excel_affinity', 'feature_surgery_cams',
    'box_mask', 'caa_refine', 'clip_es_scores', 'minmax01',
    'sinkhorn_affinity', 'softmax_gradcam',
    'normalize_cam', 'mask_cam_by_labels', 'cam_to_label',
    'cam_to_label_with_bg_threshold', 'multi_scale_flip',
    'resize_to_multiple', 'raw_weights', 'seg_pseudo_label',
    'label_merge', 'par_refine', 'class_token_gradient_map',
    'DynamicThreshold', 'fit_gmm_hist',
    'fit_gmm_1d', 'gmm_thresholds', 'feature_affinity_refine',
    'token_affinity'
]
