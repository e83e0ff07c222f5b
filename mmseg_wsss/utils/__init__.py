from .checkpoint import (CheckpointReadError, UnsafeCheckpointError,
                         add_trust_argument,
                         apply_trust_arguments, init_trained_model,
                         install_checkpoint_compat, load_state_dict_file,
                         safe_torch_load, trust_checkpoint)
from .dist import close_distributed, setup_cpu_distributed
from .misc import get_current_iter, stack_img_labels, valid_mask_of

__all__ = [
    'install_checkpoint_compat', 'load_state_dict_file', 'init_trained_model',
    'safe_torch_load', 'trust_checkpoint', 'UnsafeCheckpointError',
    'CheckpointReadError',
    'add_trust_argument', 'apply_trust_arguments',
    'get_current_iter', 'stack_img_labels', 'valid_mask_of',
    'setup_cpu_distributed', 'close_distributed'
]
