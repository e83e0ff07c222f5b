"""Config typos that mmengine accepts silently, caught before the first
iteration.

mmengine ignores a ``paramwise_cfg.custom_keys`` entry that matches no
parameter (``decod_head``), a misspelt multiplier inside one (``lr_mul``),
a misspelt ``paramwise_cfg`` option (``bias_decay_multi``) and any unknown
top-level key (``laod_from``): the run trains with settings the user did not
ask for. :class:`ConfigCheckHook` refuses the first three (they can only be
mistakes) and warns about the last (configs hold their own variables too),
each with a did-you-mean.
"""
import difflib
import logging
from typing import Iterable, List

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

# what mmengine's DefaultOptimWrapperConstructor reads from paramwise_cfg
PARAMWISE_OPTIONS = ('custom_keys', 'bias_lr_mult', 'bias_decay_mult',
                     'norm_decay_mult', 'dwconv_decay_mult',
                     'flat_decay_mult', 'dcn_offset_lr_mult',
                     'bypass_duplicate')
CUSTOM_KEY_FIELDS = ('lr_mult', 'decay_mult')
# the top-level keys Runner.from_cfg and the OpenMMLab tools read
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name',
    'custom_imports', 'model_wrapper_cfg', 'compile', 'tta_model',
    'tta_pipeline', 'vis_backends', 'strategy', 'cfg')
# variables OpenMMLab configs commonly define for themselves
COMMON_VARIABLES = ('train_pipeline', 'val_pipeline', 'test_pipeline',
                    'img_ratios', 'crop_size', 'norm_cfg', 'data_root',
                    'dataset_type', 'data_preprocessor', 'checkpoint')


def _hint(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1,
                                      cutoff=cutoff)
    return f' (did you mean {close[0]!r}?)' if close else ''


def check_paramwise_cfg(optim_wrapper_cfg, param_names: List[str]) -> None:
    """Refuse ``paramwise_cfg`` entries mmengine would ignore.

    Args:
        optim_wrapper_cfg (dict): The config's ``optim_wrapper``.
        param_names (list[str]): ``model.named_parameters()`` names (what
            a custom key is matched against: ``key in name``).

    Raises:
        ValueError: naming the key, with a did-you-mean.
    """
    paramwise = (optim_wrapper_cfg or {}).get('paramwise_cfg') or {}
    for opt in paramwise:
        if opt not in PARAMWISE_OPTIONS:
            raise ValueError(
                f'optim_wrapper.paramwise_cfg.{opt}: unknown option'
                f'{_hint(opt, PARAMWISE_OPTIONS)}; mmengine ignores it '
                f'silently. Options: {", ".join(PARAMWISE_OPTIONS)}')
    # the names a key could have meant: every dotted prefix of a parameter
    parts = set()
    for name in param_names:
        bits = name.split('.')
        for i in range(1, len(bits) + 1):
            parts.add('.'.join(bits[:i]))
        parts.update(bits)
    for key, fields in (paramwise.get('custom_keys') or {}).items():
        if not any(key in name for name in param_names):
            raise ValueError(
                f'optim_wrapper.paramwise_cfg.custom_keys[{key!r}] matches '
                f'no parameter of the model{_hint(key, parts)}, so its '
                'settings would apply to nothing (mmengine does not say '
                'so). A key matches every parameter whose name contains '
                'it, e.g. "decode_head" or "backbone.layers.11".')
        for field in fields or {}:
            if field not in CUSTOM_KEY_FIELDS:
                raise ValueError(
                    f'optim_wrapper.paramwise_cfg.custom_keys[{key!r}].'
                    f'{field}: unknown field'
                    f'{_hint(field, CUSTOM_KEY_FIELDS)}; a custom key takes '
                    f'{" and ".join(CUSTOM_KEY_FIELDS)}')


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transpositions counting one
    (``laod`` -> ``load`` is 1)."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1,
                         prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] \
                    and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def top_level_typos(cfg_keys: Iterable[str]) -> List[str]:
    """Warnings for top-level keys one or two keystrokes away from a runner
    key (``laod_from``, ``optim_wraper``); a config's own variables
    (``crop_size``, ``train_eval_dataloader``) pass."""
    out = []
    for key in cfg_keys:
        if key in RUNNER_KEYS or key in COMMON_VARIABLES or \
                key.startswith('_') or len(key) < 5:
            continue
        close = sorted((edit_distance(key, k), k) for k in RUNNER_KEYS)[0]
        if close[0] <= 2:
            out.append(f'config key {key!r} is not read by the runner; did '
                       f'you mean {close[1]!r}? (as written it has no '
                       'effect)')
    return out


def _pipeline_types(cfg) -> List[str]:
    loader = cfg.get('train_dataloader') or {}
    ds = loader.get('dataset') or {}
    while 'dataset' in ds and 'pipeline' not in ds:  # wrappers
        ds = ds['dataset']
    return [t.get('type') for t in ds.get('pipeline') or []
            if isinstance(t, dict)]


def method_preconditions(cfg, model, hook_types: List[str],
                         max_iters: int) -> List[tuple]:
    """What a WSSS method needs from the rest of the config, checked when
    the run starts. Returns ``(level, message)`` pairs, ``level``
    ``'error'`` or ``'warning'``; each message names the key and the line
    to write."""
    out = []
    kind = type(model).__name__
    train_cfg = getattr(model, 'train_cfg', None) or {}
    if kind == 'CoSA':
        if 'AssignmentNetEMAHook' not in hook_types:
            out.append(('error', (
                'CoSA: no AssignmentNetEMAHook, so the assignment network '
                'would never be updated. Add custom_hooks = '
                "[dict(type='AssignmentNetEMAHook')].")))
        constructor = (cfg.get('optim_wrapper') or {}).get('constructor')
        if constructor != 'TrainableOnlyOptimWrapperConstructor':
            out.append(('error', (
                'CoSA: optim_wrapper.constructor is '
                f'{constructor or "the default"}, which puts the assignment '
                "network's parameters into the optimizer (they have no "
                'gradient; the EMA owns them). Write optim_wrapper = '
                "dict(constructor='TrainableOnlyOptimWrapperConstructor', "
                '...).')))
        if 'StrongPhotometricView' not in _pipeline_types(cfg):
            out.append(('warning', (
                'CoSA: the training pipeline has no StrongPhotometricView, '
                'so the online network sees the same view as the assignment '
                "network. Add dict(type='StrongPhotometricView') before "
                'PackWSSSInputs in train_pipeline (unless this is meant, as '
                'in the frozen-backbone coco128 recipe).')))
    if kind in ('CAMSegmentor', 'CoSA', 'APC'):
        if 'PackWSSSInputs' not in _pipeline_types(cfg):
            out.append(('error', (
                f'{kind}: the training pipeline has no PackWSSSInputs, so '
                'the samples carry no image-level labels. End '
                "train_pipeline with dict(type='PackWSSSInputs').")))
    starts = []
    if kind in ('CAMSegmentor', 'CoSA') and \
            getattr(model, 'decode_head', None) is not None:
        losses = 'the decode head\'s loss' + (
            ' and L_c2s / L_s2c / L_csc' if kind == 'CoSA' else '')
        starts.append(('warmup_iters', train_cfg.get('warmup_iters', 0),
                       losses))
    if kind == 'APC' and getattr(model, 'decode_head', None) is not None:
        starts.append(('seg_start_iter', train_cfg.get('seg_start_iter', 0),
                       "the decode head's loss"))
    for key, start, losses in starts:
        if max_iters and start >= max_iters:
            out.append(('warning', (
                f'{kind}: model.train_cfg.{key}={start} is not below '
                f'train_cfg.max_iters={max_iters}: {losses} never switch '
                f'on in this run. Lower it (--cfg-options model.train_cfg.'
                f'{key}=N) or train longer.')))
    return out


@HOOKS.register_module()
class ConfigCheckHook(Hook):
    """Refuses ``paramwise_cfg`` typos and warns about misspelt top-level
    keys (see the module docstring) before the first training iteration,
    and checks each WSSS method's preconditions
    (:func:`method_preconditions`: CoSA's EMA hook, trainable-only
    optimizer and strong view, the packer of image labels, losses that a
    short run never switches on).

    ``tools/train.py`` adds it to every run as ``default_hooks.config_check``
    (``default_hooks.config_check=None`` turns it off).

    Example:
        >>> default_hooks = dict(config_check=dict(type='ConfigCheckHook'))
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        cfg = runner.cfg
        for msg in top_level_typos(cfg.keys()):
            print_log(msg, logger='current', level=logging.WARNING)
        model = getattr(runner.model, 'module', runner.model)
        names = [n for n, _ in model.named_parameters()]
        check_paramwise_cfg(cfg.get('optim_wrapper'), names)
        hooks = [type(h).__name__ for h in runner.hooks]
        max_iters = getattr(runner.train_loop, 'max_iters', 0)
        errors = []
        for level, msg in method_preconditions(cfg, model, hooks, max_iters):
            if level == 'error':
                errors.append(msg)
            else:
                print_log(msg, logger='current', level=logging.WARNING)
        if errors:
            raise ValueError('\n'.join(errors))
