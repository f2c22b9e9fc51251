"""The house: `lwsbuild/` reads as the pipeline, a stage imports only earlier ones, no cycle, and
every `python -m lwsbuild.…` entry point the docs name runs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "lwsbuild"
# The pipeline, in order: a module may import its own layer and the ones before it, never a later one.
LAYERS = ["lwsbuild", "lwsbuild.errors", "lwsbuild.common", "lwsbuild.resources", "lwsbuild.source",
          "lwsbuild.series", "lwsbuild.build", "lwsbuild.request", "lwsbuild.wheel", "lwsbuild.native",
          "lwsbuild.stress", "lwsbuild.upstream", "lwsbuild.export", "lwsbuild.cli", "lwsbuild.__main__"]
# Every module lwsbuild documents as `python -m ...` (README, docs/, pyproject.toml, the CMake project).
ENTRY_POINTS = ["lwsbuild", "lwsbuild.errors", "lwsbuild.request", "lwsbuild.common.settings",
                "lwsbuild.native.smoke", "lwsbuild.wheel.meta", "lwsbuild.build.sbom", "lwsbuild.build.tls",
                "lwsbuild.cli.tables"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the lwsbuild modules it imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # `from lwsbuild.build import cmake` imports the module lwsbuild.build.cmake.
                found.update(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer(module: str) -> int:
    """The index in LAYERS of the longest layer name `module` is or lies in."""
    found = [i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")]
    assert found, f"{module} is in no layer: add its package to LAYERS"
    return max(found, key=lambda i: len(LAYERS[i]))


def test_find_cycle_names_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert {"lwsbuild.cli.main", "lwsbuild.build.cmake", "lwsbuild.request", "lwsbuild.source.git"} <= set(graph)
    assert "lwsbuild.build.cmake" in graph["lwsbuild.request"]  # the graph sees function-level imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_stage_never_imports_a_later_one() -> None:
    backwards = sorted(f"{module} imports {imported}" for module, imports in import_graph().items()
                       for imported in imports if layer(imported) > layer(module))
    assert backwards == []
    assert layer("lwsbuild.wheel.backend") > layer("lwsbuild.request") > layer("lwsbuild.build.cmake")


def test_the_check_can_fail() -> None:
    assert layer("lwsbuild.build.cmake") > layer("lwsbuild.source.fetch")  # so build -> source is allowed ...
    assert layer("lwsbuild.source.fetch") < layer("lwsbuild.series.fixes")  # ... and source -> series is not


def test_only_the_entry_point_imports_the_cli() -> None:
    importers = sorted(name for name, imports in import_graph().items()
                       if any(i.startswith("lwsbuild.cli") for i in imports) and not name.startswith("lwsbuild.cli"))
    assert importers == ["lwsbuild.__main__"]


def test_the_top_level_reads_as_the_pipeline() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith((".", "__pycache__")))
    assert entries == ["__init__.py", "__main__.py", "_native", "build", "cli", "common", "errors.py", "export", "native",
                       "request.py", "resources", "series", "source", "stress", "upstream", "wheel"]
    stages = [p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file() and p.name != "_native"]
    for stage in stages:  # python -m and the pip backend import these: nothing heavy may ride along
        assert (stage / "__init__.py").read_text() == "", f"{stage.name}/__init__.py is not empty"
    assert {p.suffix for p in (PACKAGE / "resources").iterdir() if p.is_file()} <= {".toml", ".py"}
    assert not [p.name for p in PACKAGE.rglob("*.toml") if p.parent != PACKAGE / "resources"]


def test_building_the_parser_imports_no_pipeline_module() -> None:
    # `lwsbuild --help` stays fast: the request's options come from settings.py, and the request
    # itself (dataclasses, the data modules) is imported by the handlers that use it. Only what the
    # import adds counts (a site-packages .pth file may have imported anything before).
    code = ("import sys; before = set(sys.modules); from lwsbuild.cli import main; main._parser(); "
            "print(' '.join(sorted(m for m in set(sys.modules) - before if m.startswith('lwsbuild') or m in "
            "('dataclasses', 'inspect', 'tomllib', 'subprocess'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    # The three option tables (settings, the harness's flags, smoke's) and what runs the command line.
    assert result.stdout.split() == [
        "lwsbuild", "lwsbuild.build", "lwsbuild.build.harness", "lwsbuild.cli", "lwsbuild.cli.main",
        "lwsbuild.common", "lwsbuild.common.entry", "lwsbuild.common.progress", "lwsbuild.common.settings",
        "lwsbuild.errors", "lwsbuild.native", "lwsbuild.native.smoke_options"]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_documented_entry_point_runs(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO,
                            timeout=60, check=False)
    # --help, or the one-line usage of a module that takes positional arguments only: never an ImportError.
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr and "No module named" not in result.stderr


def test_the_docs_name_only_entry_points_that_exist() -> None:
    named = set()
    for path in [REPO / "README.md", *(REPO / "docs").rglob("*.md"), REPO / "pyproject.toml",
                 *(REPO / "cmake").glob("*"), REPO / ".github" / "workflows" / "build.yml"]:
        named.update(re.findall(r"-m (lwsbuild(?:\.[a-z_]+)*)", path.read_text()))
    assert named and named <= set(ENTRY_POINTS), sorted(named - set(ENTRY_POINTS))


# --- each fact once ------------------------------------------------------------------------------

def _string_literals(path: Path) -> list[str]:
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _declared_in(pattern: str) -> set[str]:
    found = re.compile(pattern)
    return {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
            if any(found.search(text) for text in _string_literals(path))}


def test_each_fact_is_declared_in_one_module() -> None:
    from lwsbuild.build import harness
    from lwsbuild.common import settings

    # the install prefix's layout and the wheel's copy of it
    # (a path on its own: prose in a help text or a hint may name the file)
    path = r"^[\w./-]*(share/lwsbuild|lwsbuild/_native|bin/lws-|layout\.json|sbom\.cdx)[\w./-]*$"
    assert _declared_in(path) == {"common/prefix.py"}
    # the default release: releases.toml's, nowhere in code
    assert _declared_in(r"^v?4\.3\.5$") == set()
    # every build setting's option, and every harness flag
    options = "|".join(re.escape(s.option) for s in settings.SETTINGS if s.option.startswith("--"))
    assert _declared_in(rf"^({options})(=|$)") <= {"common/settings.py"}
    flags = "|".join(re.escape(flag.flag) for flag in harness.FLAGS)
    assert _declared_in(rf"^({flags})$") <= {"build/harness.py"}


def test_the_wheel_holds_the_prefix_where_pyproject_says() -> None:
    import tomllib

    from lwsbuild.common import prefix

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["scikit-build"]["wheel"]["install-dir"] + "/" == prefix.WHEEL_ROOT


def test_the_public_surface_is_declared() -> None:
    import importlib

    import lwsbuild

    listed = re.findall(r"^  (lwsbuild[\w.]*) ", lwsbuild.__doc__ or "", re.MULTILINE)
    assert set(ENTRY_POINTS) - {"lwsbuild"} <= set(listed) and "lwsbuild.wheel.backend" in listed
    for name in [*listed, "lwsbuild.cli.main"]:
        if name in ("lwsbuild", "lwsbuild._native"):
            continue
        module = importlib.import_module(name)
        declared = getattr(module, "__all__", None)
        assert declared, f"{name} declares no __all__"
        assert all(hasattr(module, item) for item in declared), name
    from lwsbuild.wheel import backend

    hooks = {"build_wheel", "build_sdist", "get_requires_for_build_wheel", "prepare_metadata_for_build_wheel"}
    assert hooks <= set(backend.__all__) and all(callable(getattr(backend, hook)) for hook in backend.__all__)
