"""``mmseg::`` / ``mmseg_wsss::`` config bases without ``pkg_resources``.

mmengine 0.10.x resolves a ``package::path`` base with
``mmengine.utils.is_installed`` and ``get_installed_path``, which import
``pkg_resources`` -- gone from setuptools >= 81 (torch 2.14 needs setuptools
>= 77.0.3, so fresh environments get a setuptools without it). Then every
stock OpenMMLab config fails at its first line with ``ModuleNotFoundError:
No module named 'pkg_resources'``.

:func:`install_package_lookup_compat` (called when :mod:`mmseg_wsss` is
imported, with ``force=True``) gives mmengine the same two answers from
``importlib`` -- also where ``pkg_resources`` still exists, whose import
warns of its removal on every ``mmseg::`` look-up. ``tools/setup_env.sh`` also keeps
``setuptools<81``, for tools that read a config before importing this
package (mmseg's own ``tools/train.py``).
"""
import importlib.util
import os.path as osp

_done = False


def _distribution_files_root(package: str):
    """The folder a distribution named ``package`` is installed in, or
    None."""
    from importlib import metadata
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    return str(dist.locate_file(''))


def is_installed(package: str) -> bool:
    """``mmengine.utils.is_installed`` without ``pkg_resources``."""
    if _distribution_files_root(package) is not None:
        return True
    spec = importlib.util.find_spec(package.replace('-', '_'))
    return spec is not None and spec.origin is not None


def _module_names(package: str):
    """Import names a distribution provides (``mmsegmentation`` ->
    ``mmseg``), from its ``top_level.txt`` or file list."""
    from importlib import metadata
    names = [package, package.replace('-', '_')]
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return names
    top = dist.read_text('top_level.txt')
    if top:
        names += [n.strip() for n in top.splitlines() if n.strip()]
    for f in dist.files or []:
        parts = f.parts
        if len(parts) > 1 and parts[-1] == '__init__.py' and \
                not parts[0].endswith(('.dist-info', '.egg-info')):
            names.append(parts[0])
    return list(dict.fromkeys(names))


def get_installed_path(package: str) -> str:
    """``mmengine.utils.get_installed_path`` without ``pkg_resources``:
    the folder of the package's module (``mmsegmentation`` -> ``mmseg``)."""
    for name in _module_names(package):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin is not None:
            return osp.dirname(spec.origin)
    raise ModuleNotFoundError(f'{package} is not installed')


def install_package_lookup_compat(force: bool = False) -> bool:
    """Patch mmengine's two look-ups when ``pkg_resources`` is missing
    (or always, with ``force``). Returns whether it patched."""
    global _done
    if _done:
        return True
    if not force:
        try:  # look, do not import (importing it warns)
            if importlib.util.find_spec('pkg_resources') is not None:
                return False
        except (ImportError, ValueError):  # sys.modules entry is None
            pass
    import mmengine.config.config as config_mod
    import mmengine.utils as utils_mod
    import mmengine.utils.package_utils as pkg_mod
    for mod in (pkg_mod, utils_mod, config_mod):
        if hasattr(mod, 'is_installed'):
            mod.is_installed = is_installed
        if hasattr(mod, 'get_installed_path'):
            mod.get_installed_path = get_installed_path
    try:  # mmengine.config.utils imports them too in some versions
        import mmengine.config.utils as cfg_utils
        for name, fn in (('is_installed', is_installed),
                         ('get_installed_path', get_installed_path)):
            if hasattr(cfg_utils, name):
                setattr(cfg_utils, name, fn)
    except ImportError:
        pass
    _done = True
    return True
