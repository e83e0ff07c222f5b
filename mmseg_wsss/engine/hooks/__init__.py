from .assignment_net_ema_hook import AssignmentNetEMAHook
from .cam_visualization_hook import CAMVisualizationHook

__all__ = ['AssignmentNetEMAHook', 'CAMVisualizationHook']
