"""The architecture, checked on the source: who may import whom, and module sizes.

Every ``.py`` file under ``jaxbp/`` is parsed (``ast``, nothing is imported) and
its imports resolved to absolute module names. The layers, bottom to top::

    core (checks program_keys executable_cache compilation draws activations losses initializers layers/
          model model_init backprop gradcheck diagnostics bridge remat sampling)
      -> optim/ -> train/ (+ checkpoint) -> explain/, recipes -> cli/
    data/ is used by recipes and the CLI; benchmarks/ and experiments/ live
    outside the package, which never imports them.

Arrows point down only. The rules, one row each (a module matches a prefix
when it is that module or inside it):
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "jaxbp"

CORE = (
    "jaxbp.checks",
    "jaxbp.compilation",
    "jaxbp.executable_cache",
    "jaxbp.program_keys",
    "jaxbp.draws",
    "jaxbp.model_init",
    "jaxbp.activations",
    "jaxbp.losses",
    "jaxbp.initializers",
    "jaxbp.layers",
    "jaxbp.model",
    "jaxbp.backprop",
    "jaxbp.gradcheck",
    "jaxbp.finite_differences",
    "jaxbp.diagnostics",
    "jaxbp.bridge",
    "jaxbp.remat",
    "jaxbp.sampling",
)
ABOVE_CORE = (
    "jaxbp.optim",
    "jaxbp.train",
    "jaxbp.data",
    "jaxbp.recipes",
    "jaxbp.cli",
    "jaxbp.checkpoint",
    "jaxbp.checkpoint_saver",
    "jaxbp.explain",
)


class Rule(NamedTuple):
    """Modules matching ``applies_to`` import nothing matching ``forbidden``
    (except what matches ``allowed``)."""

    name: str
    applies_to: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()


RULES = (
    Rule(
        "layers import no model, training, CLI, recipes or data",
        ("jaxbp.layers",),
        ("jaxbp.model", "jaxbp.train", "jaxbp.cli", "jaxbp.data", "jaxbp.recipes"),
    ),
    Rule("the core imports nothing above it", CORE, ABOVE_CORE),
    Rule(
        "optim imports nothing of jaxbp outside itself, and never optax",
        ("jaxbp.optim",),
        ("jaxbp", "optax"),
        allowed=("jaxbp.optim",),
    ),
    Rule(
        "train imports neither the CLI nor recipes",
        ("jaxbp.train",),
        ("jaxbp.cli", "jaxbp.recipes"),
    ),
    Rule(
        "explain (above train) imports neither the CLI nor recipes",
        ("jaxbp.explain",),
        ("jaxbp.cli", "jaxbp.recipes"),
    ),
    Rule(
        "the package never imports experiments or benchmarks",
        ("jaxbp",),
        ("experiments", "benchmarks"),
    ),
)
#: No module under jaxbp/ is longer than this many lines.
MAX_LINES = 450


# ------------------------------------------------------------------ the checker


class Module(NamedTuple):
    name: str  # dotted, e.g. jaxbp.layers._dense
    package: str  # the package it belongs to, e.g. jaxbp.layers
    path: Path
    imports: frozenset[str]  # absolute dotted names of the modules it imports


def matches(name: str, prefixes) -> bool:
    """``name`` is one of ``prefixes`` or inside one of them (dotted)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def module_name(path: Path, root: Path) -> tuple[str, str]:
    """(dotted module name, its package) of a file under ``root`` (the package dir)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def resolve(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of ``from X import ...`` (relative X resolved)."""
    if not node.level:
        return node.module
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(tree: ast.AST, package: str, known: set[str]) -> frozenset[str]:
    """Every module an AST imports: ``import a.b`` gives a.b; ``from a import
    b`` gives a, and a.b too when that is a module of the package (``known``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = resolve(node, package)
            found.add(source)
            for alias in node.names:
                if f"{source}.{alias.name}" in known:
                    found.add(f"{source}.{alias.name}")
    return frozenset(found)


def scan(root: Path) -> list[Module]:
    """Every module of the package at ``root`` with its imports."""
    paths = sorted(root.rglob("*.py"))
    names = dict(module_name(p, root) for p in paths)
    modules = []
    for path in paths:
        name, package = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imports = imported_modules(tree, package, set(names))
        modules.append(Module(name, package, path, imports))
    return modules


def rule_violations(modules, rule: Rule) -> list[str]:
    """``module imports name`` for every import the rule forbids."""
    return [
        f"{m.name} imports {name}"
        for m in modules
        if matches(m.name, rule.applies_to)
        for name in sorted(m.imports)
        if matches(name, rule.forbidden) and not matches(name, rule.allowed)
    ]


def private_owner(name: str) -> str | None:
    """The package owning a private module (``jaxbp.layers._serial`` ->
    ``jaxbp.layers``), or None when no part of the name is private."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def private_import_violations(modules) -> list[str]:
    """Imports of another package's private module (a package's own are fine)."""
    return [
        f"{m.name} imports {name}, private to {private_owner(name)}"
        for m in modules
        for name in sorted(m.imports)
        if private_owner(name) is not None and private_owner(name) != m.package
    ]


def size_violations(modules, max_lines: int = MAX_LINES) -> list[str]:
    found = []
    for m in modules:
        lines = len(m.path.read_text(encoding="utf-8").splitlines())
        if lines > max_lines:
            found.append(f"{m.name} has {lines} lines (> {max_lines})")
    return found


# ------------------------------------------------------------------ the package


@pytest.fixture(scope="module")
def modules():
    found = scan(PACKAGE_ROOT)
    assert len(found) > 10  # the scan sees the package
    return found


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_imports_point_down(modules, rule):
    violations = rule_violations(modules, rule)
    assert not violations, f"{rule.name}:\n" + "\n".join(violations)


def test_no_module_imports_another_packages_private_module(modules):
    violations = private_import_violations(modules)
    assert not violations, "\n".join(violations)


def test_no_module_is_too_long(modules):
    violations = size_violations(modules)
    assert not violations, "\n".join(violations)


# ------------------------------------------------------------------ the checker itself


def write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")


@pytest.fixture
def synthetic(tmp_path):
    """A small package ``jaxbp`` breaking every rule once, beside good imports."""
    root = tmp_path / "jaxbp"
    write(root, "__init__.py", "from jaxbp import layers\n")
    write(root, "layers/__init__.py", "from jaxbp.layers._dense import dense\n")
    write(root, "layers/_dense.py", "from jaxbp import activations\n")
    write(root, "layers/_bad.py", "from jaxbp.model import Model\n")
    write(root, "activations.py", "import jax.numpy as jnp\n")
    write(root, "model.py", "from jaxbp.layers._dense import dense\n")
    write(root, "backprop.py", "from .train import fit\n")
    write(root, "optim/__init__.py", "from ._base import chain\n")
    write(root, "optim/_base.py", "import optax\nfrom jaxbp.checks import choose\n")
    write(root, "train/__init__.py", "from jaxbp import cli\n")
    write(root, "cli.py", "import experiments._common\n")
    write(root, "long.py", "x = 1\n" * (MAX_LINES + 1))
    return scan(root)


def test_checker_catches_every_kind_of_violation(synthetic):
    found = {rule.name: rule_violations(synthetic, rule) for rule in RULES}
    expected = {rule.name: [] for rule in RULES}
    expected[RULES[0].name] = ["jaxbp.layers._bad imports jaxbp.model"]
    expected[RULES[1].name] = ["jaxbp.backprop imports jaxbp.train"]
    expected[RULES[2].name] = [
        "jaxbp.optim._base imports jaxbp.checks",
        "jaxbp.optim._base imports optax",
    ]
    expected[RULES[3].name] = ["jaxbp.train imports jaxbp.cli"]
    expected["the package never imports experiments or benchmarks"] = [
        "jaxbp.cli imports experiments._common"
    ]
    assert found == expected
    assert private_import_violations(synthetic) == [
        "jaxbp.cli imports experiments._common, private to experiments",
        "jaxbp.model imports jaxbp.layers._dense, private to jaxbp.layers",
    ]
    assert size_violations(synthetic) == [
        f"jaxbp.long has {MAX_LINES + 1} lines (> {MAX_LINES})"
    ]


def test_checker_resolves_imports():
    tree = ast.parse(
        "import jax.numpy as jnp\n"
        "from . import _windows\n"
        "from ._protocol import Layer\n"
        "from .. import initializers\n"
    )
    known = {"jaxbp.layers._windows", "jaxbp.initializers"}
    assert imported_modules(tree, "jaxbp.layers", known) == {
        "jax.numpy",
        "jaxbp.layers",
        "jaxbp.layers._windows",
        "jaxbp.layers._protocol",
        "jaxbp",
        "jaxbp.initializers",
    }
    assert private_owner("jaxbp.layers._serial") == "jaxbp.layers"
    assert private_owner("jaxbp.layers.__init__") is None
    assert matches("jaxbp.train.fit", ("jaxbp.train",))
    assert not matches("jaxbp.training", ("jaxbp.train",))
