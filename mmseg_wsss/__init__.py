"""mmseg-wsss: weakly supervised semantic segmentation for MMSegmentation 1.x.

Importing this package registers its datasets, transforms, models, metrics
and loops in mmseg's registries, makes mmengine checkpoint loading work
with torch >= 2.6 (see :mod:`mmseg_wsss.utils.checkpoint`), lets config
bases like ``mmseg::segformer/...`` load without ``pkg_resources`` and makes
``mmseg_wsss::`` bases resolve (:mod:`mmseg_wsss.utils.mmengine_compat`).
"""
from .utils.checkpoint import install_checkpoint_compat
from .utils.mmengine_compat import install_package_lookup_compat
from .version import __version__

install_checkpoint_compat()
install_package_lookup_compat(force=True)  # mmseg:: bases, no pkg_resources


def _register_config_scope() -> None:
    """Let ``_base_ = ['mmseg_wsss::cosa/cosa_vitb_voc.py']`` resolve
    (mmengine keeps a table of the OpenMMLab packages it knows)."""
    from mmengine.config import utils as cfg_utils
    cfg_utils.MODULE2PACKAGE.setdefault('mmseg_wsss', 'mmseg_wsss')


_register_config_scope()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               registry, visualization)

__all__ = ['__version__', 'install_checkpoint_compat']
