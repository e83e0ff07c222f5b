"""Safe checkpoint loading for every scheme mmengine knows.

A ``.pth`` file is a pickle: fully unpickling it can run any code the file
names (``__reduce__``). torch >= 2.6 loads with the weights-only unpickler by
default, but mmengine 0.10.x checkpoints hold ``HistoryBuffer`` objects and
numpy values that it rejects, and mmengine's URL loaders
(``http(s)://``, ``open-mmlab://``, ``mmcls://``, ``torchvision://``) call
``torch.hub.load_state_dict_from_url``, whose ``weights_only`` still defaults
to False. Importing :mod:`mmseg_wsss` calls :func:`install_checkpoint_compat`,
which

1. allow-lists the few globals that legitimate checkpoints hold
   (``torch.serialization.add_safe_globals``): mmengine's meta and message
   hub (``HistoryBuffer``, numpy arrays, scalars and dtypes), optimizer,
   scheduler and AMP loss-scaler states and the RNG states that
   :class:`mmseg_wsss.engine.RNGStateHook` saves; plain state dicts need
   nothing beyond torch's own list;
2. re-registers mmengine's loader for local files and replaces the URL
   download of its ``http(s)://``-based schemes, so that every way a
   checkpoint reaches the model -- a local path, a URL, ``init_cfg=dict(
   type='Pretrained')``, ``load_from``, ``--resume``,
   ``backbone.pretrained`` -- goes through :func:`safe_torch_load`.

A file that needs any other global is **refused** with
:class:`UnsafeCheckpointError`, naming the file and the globals; nothing of
it is executed. For a legacy checkpoint you trust, opt in explicitly: set
``WSSS_TRUSTED_CHECKPOINTS`` to its path (several joined with ``:``; ``*``
trusts every file) or pass ``--trust-checkpoint PATH`` to the tools, which
calls :func:`trust_checkpoint`.
"""
import os
import os.path as osp
import pickle
import re
from functools import lru_cache
from typing import Dict, Iterable, List, Optional
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import print_log

TRUST_ENV = 'WSSS_TRUSTED_CHECKPOINTS'
_trusted: set = set()
_installed = False
_FORCE_LEGACY = False  # tests: the torch < 2.4 path on any torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds globals outside the allow-list; it was not
    loaded (nothing in it ran)."""


class CheckpointReadError(RuntimeError):
    """A checkpoint file is cut short, damaged or no checkpoint at all."""


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


class _SafeGetattr:
    """``getattr`` for the legacy unpickler: only HistoryBuffer's statistics
    methods (how HistoryBuffer pickles them) -- a general ``getattr`` would
    let a file call e.g. ``ndarray.tofile``."""

    def __call__(self, obj, name):
        from mmengine.logging.history_buffer import HistoryBuffer
        if obj is HistoryBuffer and not name.startswith('_'):
            return getattr(obj, name)
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL builtins.getattr on {obj!r}.{name}')


@lru_cache(maxsize=1)
def _legacy_allowed() -> frozenset:
    """(module, name) pairs the legacy unpickler resolves (built once)."""
    allowed = {('collections', 'OrderedDict'), ('_codecs', 'encode'),
               ('torch', 'Size'), ('torch', 'device'),
               ('builtins', 'set'), ('builtins', 'frozenset'),
               ('__builtin__', 'set'), ('__builtin__', 'frozenset')}
    allowed |= {('torch._utils', n) for n in (
        '_rebuild_tensor', '_rebuild_tensor_v2', '_rebuild_parameter',
        '_rebuild_parameter_with_state')}
    allowed |= {('torch._tensor', '_rebuild_from_type_v2')}
    allowed |= {(g.__module__, g.__qualname__) for g in _safe_globals()
                if g is not getattr and hasattr(g, '__qualname__')}
    return frozenset(allowed)


class _LegacyUnpickler(pickle.Unpickler):
    """Restricted unpickler for torch < 2.4 (no ``add_safe_globals``):
    tensors, storages (torch maps those itself), dtypes, ``Size``,
    ``OrderedDict`` and the allow-list above."""

    def find_class(self, module, name):
        if module in ('builtins', '__builtin__') and name == 'getattr':
            return _SafeGetattr()
        if (module, name) in _legacy_allowed() or (
                module == 'torch' and
                isinstance(getattr(torch, name, None), torch.dtype)) or (
                module in ('numpy.core.multiarray', 'numpy._core.multiarray')
                and name in ('_reconstruct', 'scalar')) or (
                module == 'numpy' and name in ('ndarray', 'dtype')) or (
                module == 'numpy.dtypes' and name.endswith('DType')):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f'Unsupported global: GLOBAL {module}.{name}')


_legacy_pickle = type(pickle)('mmseg_wsss_restricted_pickle')
_legacy_pickle.Unpickler = _LegacyUnpickler
_legacy_pickle.load = lambda f, **kw: _LegacyUnpickler(f, **kw).load()
_legacy_pickle.__dict__.update({
    k: getattr(pickle, k)
    for k in ('UnpicklingError', 'HIGHEST_PROTOCOL', 'Pickler', 'dump',
              'dumps')
})


def _key(path: str) -> str:
    if '://' in path:
        return path
    return osp.realpath(osp.expanduser(path))


def trust_checkpoint(*paths: str) -> None:
    """Allow full unpickling of these files (or URLs) in this process --
    only for checkpoints you trust. ``'*'`` trusts every file."""
    _trusted.update(p if p == '*' or p.startswith('sha256:') else _key(p)
                    for p in paths)


def split_trust_list(text: str) -> List[str]:
    """Entries of ``WSSS_TRUSTED_CHECKPOINTS``: separated by ``:`` (as
    ``PATH``), newlines, ``;`` or ``,`` -- a URL's own colons
    (``https://host:8080/x.pth``) do not split it."""
    out: List[str] = []
    for chunk in re.split(r'[\n;,]+', text or ''):
        pieces = chunk.split(':')
        i = 0
        while i < len(pieces):
            item = pieces[i]
            if item.strip() == 'sha256' and i + 1 < len(pieces):
                item += ':' + pieces[i + 1]  # sha256:<hex>
                i += 1
            elif i + 1 < len(pieces) and pieces[i + 1].startswith('//') and \
                    re.fullmatch(r'[A-Za-z][\w+.-]*', item):
                item += ':' + pieces[i + 1]  # scheme://...
                i += 1
                while i + 1 < len(pieces) and re.match(
                        r'\d+(/|$)', pieces[i + 1]) and \
                        '/' not in item.split('://', 1)[1]:
                    item += ':' + pieces[i + 1]  # host:port/...
                    i += 1
            i += 1
            if item.strip():
                out.append(item.strip())
    return out


def sha256_file(path: str) -> str:
    """SHA-256 (hex) of a file's bytes."""
    import hashlib
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def is_trusted(path: str, content: Optional[str] = None) -> bool:
    """Whether ``path`` was trusted by :func:`trust_checkpoint` or the
    ``WSSS_TRUSTED_CHECKPOINTS`` environment variable: by path or URL, or
    by content (an entry ``sha256:<hex>`` trusts every file with exactly
    those bytes; ``content`` is the local file to hash, default
    ``path``)."""
    listed = set(_trusted)
    for item in split_trust_list(os.environ.get(TRUST_ENV, '')):
        listed.add(item if item == '*' or item.startswith('sha256:')
                   else _key(item))
    if '*' in listed or _key(path) in listed:
        return True
    hashes = {x[7:].lower() for x in listed if x.startswith('sha256:')}
    local = content or path
    if hashes and '://' not in local and osp.isfile(local):
        return sha256_file(local) in hashes
    return False


_STRING_OPS = ('SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE',
               'SHORT_BINSTRING', 'BINSTRING', 'STRING')


def _py3_name(module: str, name: str) -> str:
    """Python 2 names that protocol-2 pickles hold (``__builtin__.set``)
    as Python 3 resolves them (``builtins.set``)."""
    import _compat_pickle
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f'{module}.{name}'


def scan_pickle_globals(filename: str) -> List[str]:
    """The globals a ``torch.save`` (zip or legacy) or plain pickle file
    names, read from its opcodes without unpickling anything; a ``getattr``
    lookup is shown with its attribute, ``builtins.getattr(numpy.ndarray,
    'tofile')``. Python 2 names are given as Python 3 resolves them."""
    import io
    import pickletools
    import zipfile
    blobs = []
    try:
        if zipfile.is_zipfile(filename):
            with zipfile.ZipFile(filename) as z:
                blobs = [z.read(n) for n in z.namelist()
                         if n.endswith('data.pkl')]
        else:
            with open(filename, 'rb') as f:
                blobs = [f.read()]
    except (OSError, zipfile.BadZipFile):
        return []
    found: List[str] = []
    for data in blobs:
        stream = io.BytesIO(data)
        while stream.tell() < len(data):  # legacy files: several pickles
            strings, memo, last = [], {}, None
            getattr_at, gl = None, None
            try:
                for op, arg, _ in pickletools.genops(stream):
                    name = op.name
                    if name in _STRING_OPS:
                        last = arg.decode('latin1') if isinstance(
                            arg, bytes) else str(arg)
                        strings.append(last)
                        if getattr_at is not None and gl is not None:
                            found[getattr_at] = (f'builtins.getattr({gl}, '
                                                 f'{last!r})')
                            getattr_at = gl = None
                    elif name in ('BINPUT', 'LONG_BINPUT', 'PUT'):
                        memo[arg] = last
                    elif name == 'MEMOIZE':
                        memo[len(memo)] = last
                    elif name in ('BINGET', 'LONG_BINGET', 'GET'):
                        last = memo.get(arg)
                        if isinstance(last, str):
                            strings.append(last)
                    elif name in ('GLOBAL', 'INST', 'STACK_GLOBAL'):
                        if name == 'STACK_GLOBAL':
                            if len(strings) < 2:
                                continue
                            mod, attr = strings[-2], strings[-1]
                            del strings[-2:]
                        else:
                            mod, attr = str(arg).split(' ', 1)
                        full = _py3_name(mod, attr)
                        if full == 'builtins.getattr':
                            getattr_at = len(found)
                            found.append(full)
                        elif getattr_at is not None and gl is None:
                            gl = full
                            found.append(full)
                        else:
                            found.append(full)
                        last = None
                    if name == 'STOP':
                        break
                else:
                    break
            except Exception:  # noqa: B902  (not a pickle past here)
                break
    return list(dict.fromkeys(found))


def _allowed_names() -> set:
    names = {f'{g.__module__}.{g.__qualname__}' for g in _safe_globals()
             if g is not getattr}
    try:
        from torch import _weights_only_unpickler as wou
        names |= set(wou._get_allowed_globals())
    except Exception:  # noqa: B902  (private API; best effort)
        pass
    names |= {f'{m}.{n}' for m, n in _legacy_allowed()}
    return names


def _unsafe_globals(filename: str, err: Exception) -> List[str]:
    """What made the weights-only load fail, read without unpickling
    anything: the globals outside the allow-list, a ``getattr`` lookup, or
    else the unpickler's own reason -- never an empty answer."""
    names: List[str] = []
    finder = getattr(torch.serialization, 'get_unsafe_globals_in_checkpoint',
                     None)
    allowed = _allowed_names()
    if finder is not None and isinstance(filename, str):
        try:
            names = [n for n in finder(filename) if n not in allowed]
        except Exception:  # legacy (non-zip) files: scanned below
            names = []
    if not names and isinstance(filename, str):
        scanned = scan_pickle_globals(filename)
        names = [n for n in scanned
                 if n not in allowed and not n.startswith('torch.')
                 or n.startswith('builtins.getattr(')]
        names = [n for n in names if n != 'builtins.getattr'] or names
    if not names:
        text = re.sub(r'\x1b\[[0-9;]*m', '', str(err))
        names = re.findall(r'GLOBAL ([\w.]+)', text)
    if not names:
        text = re.sub(r'\x1b\[[0-9;]*m', '', str(err))
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        reason = next((ln for ln in lines if not ln.startswith(
            ('Weights only load failed', 'Please file', 'Check the',
             'WeightsUnpickler error'))), lines[-1] if lines else str(err))
        names = [f'content the weights-only unpickler rejects ({reason}; '
                 'not a plain torch.save of tensors and numbers)']
    return names


def safe_torch_load(filename: str, map_location=None,
                    source: Optional[str] = None):
    """``torch.load`` with the weights-only unpickler and the allow-list.

    Args:
        filename (str): A local file.
        map_location: As :func:`torch.load`.
        source (str, optional): Where the file came from (a URL), for the
            messages and the trust check. Defaults to ``filename``.

    Raises:
        UnsafeCheckpointError: The file needs other globals and is not
            trusted; the message names the file, the globals and the opt-in.
    """
    source = source or filename
    if is_trusted(source, content=filename) or is_trusted(filename):
        print_log(f'loading the trusted checkpoint {source} with full '
                  'unpickling (weights_only=False)', logger='current')
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    try:
        if hasattr(torch.serialization, 'add_safe_globals') and \
                not _FORCE_LEGACY:
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
        # torch < 2.4: the same allow-list through a restricted unpickler
        return torch.load(filename, map_location=map_location,
                          pickle_module=_legacy_pickle, weights_only=False)
    except pickle.UnpicklingError as err:
        bad = ', '.join(_unsafe_globals(filename, err))
        raise UnsafeCheckpointError(
            f'refusing to load {source}: it holds {bad}, which the safe '
            '(weights-only) unpickler does not allow -- unpickling it could '
            'run code from the file, so nothing of it was loaded. If you '
            'trust the file (e.g. a checkpoint you wrote with an older '
            f'toolbox), allow it explicitly: {TRUST_ENV}={source} in the '
            'environment (several joined with ":" or ";", URLs included; '
            '"sha256:<hex>" trusts exactly those bytes; "*" trusts every '
            'file) or --trust-checkpoint on tools/train.py, test.py, '
            'gen_pseudo_labels.py and vis_cam.py. Better: load it once that '
            'way and save only its state dict.') from None
    except FileNotFoundError:
        raise
    except (RuntimeError, KeyError, EOFError, ValueError, OSError) as err:
        raise CheckpointReadError(
            f'cannot read the checkpoint {source}: {type(err).__name__}: '
            f'{str(err).strip()[:300]}. The file is not a complete '
            'torch.save file: cut short (an interrupted save or download), '
            'damaged, or not a checkpoint. Use another checkpoint (a '
            'training work dir keeps the previous ones; tools/train.py '
            '--resume picks the newest complete one).') from None


def _load_from_local(filename, map_location):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location)


def _safe_load_url(url, model_dir=None, map_location=None, progress=True,
                   check_hash=False, file_name=None, weights_only=None):
    """Drop-in for ``torch.hub.load_state_dict_from_url`` (which mmengine's
    URL schemes call with ``weights_only=False``): the same download cache
    (``$TORCH_HOME/hub/checkpoints``), then :func:`safe_torch_load`."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    name = file_name or osp.basename(urlparse(url).path)
    cached = osp.join(model_dir, url_cache_name(url, name))
    if not osp.exists(cached):
        print_log(f'Downloading: "{url}" to {cached}', logger='current')
        prefix = None
        if check_hash:
            found = torch.hub.HASH_REGEX.search(name)
            prefix = found.group(1) if found else None
        torch.hub.download_url_to_file(url, cached, prefix,
                                       progress=progress)
    try:
        return safe_torch_load(cached, map_location, source=url)
    except UnsafeCheckpointError:
        # never leave a refused file where a later (trusted) load of this
        # or another URL could find it
        os.remove(cached)
        raise


def url_cache_name(url: str, name: str) -> str:
    """The download cache's file name for ``url``: its file name prefixed
    with a hash of the whole URL. torch.hub keys its cache by the file name
    alone, so two URLs ending in ``legit.pth`` would share one cached
    file, and trusting one URL would load whatever the other fetched."""
    import hashlib
    return hashlib.sha256(url.encode()).hexdigest()[:16] + '-' + name


def install_checkpoint_compat() -> None:
    """Route every mmengine checkpoint scheme through the safe loader
    (see the module docstring). Idempotent."""
    global _installed
    if _installed:
        return
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(_safe_globals())
    import mmengine.runner.checkpoint as mm_ckpt
    mm_ckpt.CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    # http(s)://, open-mmlab://, mmcls://, torchvision:// all download
    # through this module-level name
    mm_ckpt.load_url = _safe_load_url
    _installed = True


def add_trust_argument(parser) -> None:
    """``--trust-checkpoint PATH`` for a tool's argument parser."""
    parser.add_argument(
        '--trust-checkpoint',
        action='append',
        default=[],
        metavar='PATH',
        help='allow full unpickling of this checkpoint (a legacy file you '
        'trust that holds objects outside the safe allow-list); repeatable')


def apply_trust_arguments(paths: Iterable[str]) -> None:
    """Trust the ``--trust-checkpoint`` paths, also in launched ranks and
    data-loader workers (through the environment variable)."""
    paths = list(paths or [])
    if not paths:
        return
    trust_checkpoint(*paths)
    old = [p for p in os.environ.get(TRUST_ENV, '').split(os.pathsep) if p]
    os.environ[TRUST_ENV] = os.pathsep.join(old + paths)


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
    return safe_torch_load(path, map_location='cpu')


def init_trained_model(cfg, checkpoint: str, device: str = 'cpu'):
    """Build ``cfg.model`` for inference with the weights of a training
    ``checkpoint``: the backbone's ``pretrained`` file is not loaded (the
    checkpoint holds the trained weights), the model is moved to ``device``
    and put in eval mode. Unlike ``mmseg.apis.init_model`` it keeps
    ``train_cfg``, whose pseudo-label thresholds the WSSS tools use.

    ``checkpoint`` ``None`` or ``'none'``: a training-free model (CLIP-ES)
    whose weights come from its config (``backbone.pretrained``)."""
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    if checkpoint in (None, 'none'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        return model.to(device).eval()
    cfg.model.backbone.pop('pretrained', None)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    return model.to(device).eval()
