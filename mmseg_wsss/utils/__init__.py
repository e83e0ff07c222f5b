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


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register every mmseg and mmseg-wsss module (OpenMMLab convention;
    mmengine calls it for configs of scope ``mmseg_wsss``).

    Args:
        init_default_scope (bool): Also make ``mmseg`` the default scope
            when none is set (the scope this package's configs use).
    """
    import mmseg_wsss  # noqa: F401  (registers on import)
    from mmseg.utils import register_all_modules as mmseg_register
    mmseg_register(init_default_scope=init_default_scope)


__all__.append('register_all_modules')
