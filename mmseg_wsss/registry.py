"""Registries of the ``mmseg_wsss`` scope.

Every component of this package registers in mmseg's registries (so an
ordinary mmseg config with ``default_scope='mmseg'`` builds it). These are
their children with scope ``mmseg_wsss``: mmengine gives every ``type``
inherited through an external base, ``_base_ =
['mmseg_wsss::cosa/cosa_vitb_voc.py']``, the scope ``mmseg_wsss``, and
looks for a registry of that scope; a lookup here falls back to mmseg's
(and on to mmengine's), so such configs build exactly what the repository's
own configs build.
"""
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

_NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
          'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
          'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
          'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS',
          'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS',
          'LOG_PROCESSORS', 'INFERENCERS')

for _name in _NAMES:
    _parent = getattr(mmseg_registry, _name, None)
    if _parent is not None:
        globals()[_name] = Registry(_parent.name, parent=_parent,
                                    scope='mmseg_wsss')

__all__ = [n for n in _NAMES if n in globals()]
