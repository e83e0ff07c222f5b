"""Package layering: ``utils``, ``datasets`` and ``evaluation`` sit below
``models`` and never import it (issue #28: the benchmark engine, which builds
models, moved from ``mmseg_wsss.utils`` to ``mmseg_wsss.apis``)."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / 'mmseg_wsss'
LOWER = ('utils', 'datasets', 'evaluation')


def imported_modules(source: str, module: str):
    """Absolute names of every module ``source`` imports (relative imports
    resolved against ``module``, the importing module's dotted name; imports
    inside functions count too)."""
    names = []
    package = module.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - (node.level - 1)]
                mod = '.'.join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ''
            names.append(mod)
            # `from .. import models` names the package in the alias
            names += [f'{mod}.{a.name}' for a in node.names]
    return names


def layering_violations(root: Path, lower=LOWER,
                        forbidden='mmseg_wsss.models'):
    bad = []
    for sub in lower:
        for path in sorted((root / sub).rglob('*.py')):
            rel = path.relative_to(root.parent)
            # a package's __init__ keeps its '.__init__' part, so relative
            # imports in it resolve against the package itself
            module = '.'.join(rel.with_suffix('').parts)
            for name in imported_modules(path.read_text(), module):
                if name == forbidden or name.startswith(forbidden + '.'):
                    bad.append(f'{rel} imports {name}')
    return bad


def test_lower_layers_never_import_models():
    assert layering_violations(PKG) == []


@pytest.mark.parametrize('line', [
    'from mmseg_wsss.models.pseudo_labels import cam_to_label',
    'from ..models import segmentors',
    'from .. import models',
    'import mmseg_wsss.models.backbones',
    'def f():\n    from ...models.utils.clip_text import load_text_bank',
])
def test_layering_check_catches_each_import_form(tmp_path, line):
    """The check fails when a lower layer imports models, in every form."""
    pkg = tmp_path / 'mmseg_wsss'
    for sub in ('utils', 'models', 'utils/inner'):
        (pkg / sub).mkdir(parents=True, exist_ok=True)
        (pkg / sub / '__init__.py').write_text('')
    target = pkg / 'utils' / ('inner/mod.py' if '...' in line else 'mod.py')
    target.write_text(line + '\n')
    assert layering_violations(pkg, lower=('utils', )) != []
    target.write_text('from mmseg_wsss.utils import misc\nimport torch\n')
    assert layering_violations(pkg, lower=('utils', )) == []


def test_benchmark_lives_in_apis():
    assert (PKG / 'apis' / 'benchmark.py').is_file()
    assert not (PKG / 'utils' / 'benchmark.py').exists()


def test_layering_check_resolves_relative_imports_in_a_package_init(
        tmp_path):
    pkg = tmp_path / 'mmseg_wsss'
    for sub in ('utils', 'models'):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / '__init__.py').write_text('')
    (pkg / 'utils' / '__init__.py').write_text('from ..models import x\n')
    assert layering_violations(pkg, lower=('utils', )) == [
        'mmseg_wsss/utils/__init__.py imports mmseg_wsss.models',
        'mmseg_wsss/utils/__init__.py imports mmseg_wsss.models.x']
    (pkg / 'utils' / '__init__.py').write_text('from .misc import x\n')
    assert layering_violations(pkg, lower=('utils', )) == []
