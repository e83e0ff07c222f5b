from .checkpoint import (init_trained_model, install_checkpoint_compat,
                         load_state_dict_file)
from .dist import setup_cpu_distributed
from .misc import get_current_iter, stack_img_labels, valid_mask_of

__all__ = [
    'install_checkpoint_compat', 'load_state_dict_file', 'init_trained_model',
    'get_current_iter',
    'stack_img_labels', 'valid_mask_of', 'setup_cpu_distributed'
]
