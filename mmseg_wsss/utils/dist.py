import gc
import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Make ``--launcher pytorch`` work on machines without CUDA.

    mmengine 0.10.x always calls ``torch.cuda.set_device`` when it initialises
    the process group and wraps the model in DDP with
    ``device_ids=[LOCAL_RANK]``; both fail on CPU. Without CUDA this function
    creates the gloo process group itself (mmengine then skips its own
    initialisation) and sets ``model_wrapper_cfg.device_ids=None``. With CUDA
    it does nothing and mmengine's normal path runs.

    Returns:
        bool: True when the CPU path was set up.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher {launcher!r} needs CUDA; on CPU use '
                           '--launcher pytorch (tools/dist_train.sh)')
    if not dist.is_initialized():
        dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    env_cfg = cfg.get('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.env_cfg = env_cfg
    return True


def close_distributed() -> None:
    """Leave the process group together and close it.

    A gloo group still alive at interpreter exit can abort a rank
    (``terminate called without an active exception``, SIGABRT) and fail
    the whole launch, about one run in ten. Every tool that opens or
    inherits a process group drops what holds the group (the runner and its
    DDP wrapper: ``del runner`` before calling this) and calls this on its
    success path: garbage is collected, the ranks meet at a barrier (so
    none tears down while another still talks to it), then the group is
    destroyed. A no-op without a group.
    """
    gc.collect()  # DDP wrappers and work handles keep the group alive
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
