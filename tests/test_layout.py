"""The code's layout holds: layers import only the layers before them, no two library modules
import each other, no function runs past 120 lines, and nothing refers to a tracker's issue
numbers (a reader of the repository cannot follow them)."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "metarl_jax"
# docs/ARCHITECTURE.md's layers, in order: each may import the ones before it
LAYERS = ("tasks", "envs", "nets", "rl", "algos", "baselines", "sweep", "io", "data", "runs")
MAX_FUNCTION_LINES = 120
ISSUE_REFERENCE = re.compile(r"\bissues? ?#?\d+\b|(?<![\w&])#\d{2,}\b", re.IGNORECASE)


def _modules(root: pathlib.Path):
    return sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts)


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Every module an import statement names, `from a import b` as both a and a.b (b may be a
    module); relative imports resolved."""
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _library_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _modules(LIBRARY)}
    return {
        name: {m for m in _imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_layers_import_only_earlier_layers_and_never_the_apps():
    wrong = []
    for path in _modules(LIBRARY):
        name = _module_name(path)
        imported = _imported_modules(path)
        wrong += [f"{name} -> {m}" for m in imported if m.split(".")[0] in ("experiments", "tools")]
        own = _layer(name)
        if own is None:
            continue
        for module in imported:
            other = _layer(module)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                wrong.append(f"{name} -> {module}")
    assert not wrong, wrong


def test_no_two_library_modules_import_each_other():
    graph = _library_graph()
    pairs = sorted(
        f"{a} <-> {b}"
        for a, imported in graph.items()
        for b in imported
        if a < b and a in graph.get(b, set()) and not b.startswith(a + ".")
        # a package's __init__ re-exports its modules: a module importing its own package's
        # siblings through the package is a cycle too, but package -> own submodule is not one
    )
    assert not pairs, pairs


@pytest.mark.parametrize("tree", ["metarl_jax", "experiments", "tools"])
def test_no_function_is_longer_than_the_bar(tree):
    long = []
    for path in _modules(ROOT / tree):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {length}")
    assert not long, long


def test_code_and_flag_files_name_no_issue_numbers():
    files = [
        *_modules(LIBRARY),
        *_modules(ROOT / "experiments"),
        *_modules(ROOT / "tests"),
        *_modules(ROOT / "tools"),
        *sorted((ROOT / "experiments" / "flags").rglob("*.flags")),
    ]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ISSUE_REFERENCE.search(line)
    ]
    assert not found, found
