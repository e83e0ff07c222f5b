"""Checkpoint loading that works with torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default, and mmengine
0.10.x calls ``torch.load`` without the argument. mmengine checkpoints hold
``HistoryBuffer`` objects, numpy arrays and numpy scalars in their ``meta`` and
``message_hub`` entries, which the weights-only unpickler rejects, so
``--resume``, ``load_from`` and ``tools/test.py CONFIG CKPT`` all fail.

Importing :mod:`mmseg_wsss` calls :func:`install_checkpoint_compat`, which

1. allow-lists the few globals mmengine checkpoints contain
   (``torch.serialization.add_safe_globals``), so they load with the safe
   weights-only unpickler, and
2. re-registers mmengine's loader for local files so that a local checkpoint
   that still needs another global is loaded with ``weights_only=False`` (the
   behaviour of torch < 2.6, for files on the user's own disk) after a
   warning that names the file and the global.
"""
import os.path as osp
import pickle
import warnings
from typing import Dict

import numpy as np
import torch

_installed = False


def _safe_globals() -> list:
    from mmengine.logging.history_buffer import HistoryBuffer

    # HistoryBuffer pickles its statistics methods as
    # ``getattr(HistoryBuffer, 'min')``. The weights-only unpickler only lets
    # REDUCE call allow-listed callables, so allowing ``getattr`` permits
    # looking up attributes of already-allowed objects, never calling them.
    found = [HistoryBuffer, np.ndarray, np.dtype, getattr]
    # numpy moved its internals to numpy._core in 2.0; accept both names.
    for mod_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        found += [mod._reconstruct, mod.scalar]
        break
    # dtype classes (numpy >= 1.25 pickles e.g. numpy.dtypes.Float64DType)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [
            getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')
        ]
    return found


def _torch_load(filename: str, map_location=None):
    """``torch.load`` with the allow-list, falling back to full unpickling
    of a local file (what torch < 2.6 did) with a warning."""
    try:
        return torch.load(filename, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as err:
        warnings.warn(
            f'{filename} holds objects outside the weights-only allow-list '
            f'({str(err).splitlines()[0][:200]}); loading it with '
            'weights_only=False as torch < 2.6 did. Only load checkpoints '
            'you trust.')
        return torch.load(filename, map_location=map_location,
                          weights_only=False)


def _load_from_local(filename, map_location):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return _torch_load(filename, map_location)


def install_checkpoint_compat() -> None:
    """Make mmengine's checkpoint loading work with torch >= 2.6.

    Idempotent."""
    global _installed
    if _installed:
        return
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(_safe_globals())
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    _installed = True


def load_state_dict_file(path: str) -> Dict[str, torch.Tensor]:
    """Load a state dict from ``.pth``/``.pt``/``.bin`` or ``.safetensors``.

    Raises:
        FileNotFoundError: naming the path, when it does not exist.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'pretrained weights {path!r} not found; download them or fix '
            'the path in the config (backbone.pretrained)')
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise ImportError(f'{path} is a .safetensors file; '
                              'pip install safetensors to read it') from e
        return load_file(path)
    return _torch_load(path, map_location='cpu')


def init_trained_model(cfg, checkpoint: str, device: str = 'cpu'):
    """Build ``cfg.model`` for inference with the weights of a training
    ``checkpoint``: the backbone's ``pretrained`` file is not loaded (the
    checkpoint holds the trained weights), the model is moved to ``device``
    and put in eval mode. Unlike ``mmseg.apis.init_model`` it keeps
    ``train_cfg``, whose pseudo-label thresholds the WSSS tools use."""
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    cfg.model.backbone.pop('pretrained', None)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.to(device).eval()
