from .assignment_net_ema_hook import AssignmentNetEMAHook
from .cam_visualization_hook import CAMVisualizationHook
from .non_finite_check_hook import NonFiniteCheckHook
from .rng_state_hook import RNGStateHook, get_rng_states, set_rng_states

__all__ = [
    'AssignmentNetEMAHook', 'CAMVisualizationHook', 'NonFiniteCheckHook',
    'RNGStateHook', 'get_rng_states', 'set_rng_states'
]
