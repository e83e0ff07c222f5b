from .assignment_net_ema_hook import AssignmentNetEMAHook
from .atomic_checkpoint_hook import AtomicCheckpointHook, NothingToTrainError
from .cam_visualization_hook import CAMVisualizationHook
from .config_check_hook import ConfigCheckHook
from .non_finite_check_hook import NonFiniteCheckHook
from .rng_state_hook import RNGStateHook, get_rng_states, set_rng_states

__all__ = [
    'AssignmentNetEMAHook', 'AtomicCheckpointHook', 'NothingToTrainError',
    'ConfigCheckHook', 'CAMVisualizationHook', 'NonFiniteCheckHook',
    'RNGStateHook', 'get_rng_states', 'set_rng_states'
]
