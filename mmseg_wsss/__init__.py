"""mmseg-wsss: weakly supervised semantic segmentation for MMSegmentation 1.x.

Importing this package registers its datasets, transforms, models, metrics
and loops in mmseg's registries, and makes mmengine checkpoint loading work
with torch >= 2.6 (see :mod:`mmseg_wsss.utils.checkpoint`).
"""
from .utils.checkpoint import install_checkpoint_compat
from .version import __version__

install_checkpoint_compat()

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401,E501

__all__ = ['__version__', 'install_checkpoint_compat']
