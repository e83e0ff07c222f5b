from .cam_panel import (colorize_mask, draw_cam_panel, overlay_heatmap,
                        predict_panel, refine_setting,
                        stack_panels)

__all__ = [
    'draw_cam_panel', 'colorize_mask', 'overlay_heatmap', 'predict_panel',
    'refine_setting',
    'stack_panels'
]
