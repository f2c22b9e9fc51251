"""provenance.json: one writer (BuildSpec.provenance), typed readers, a schema version.

Fast: builds are planned, not made (helpers/planned.py); the files are written by the real writer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Json, run_cli
from helpers import planned
from helpers.checks import error_line
from lwsbuild.build import cmake as build
from lwsbuild.build import provenance, variants
from lwsbuild.common import prefix as layout
from lwsbuild.errors import ProvenanceError
from lwsbuild.native import library as native
from lwsbuild.wheel import meta as wheelmeta

PLANS = [("release", {}), ("asan", {}), ("tsan", {}), ("asan", {"unfixed": True}),
         ("release", {"series_name": "seed", "defines": {"LWS_WITH_HTTP2": "OFF"}}),
         ("release", {"unpinned": True})]


@pytest.mark.parametrize("variant, kwargs", PLANS)
def test_what_is_written_reads_back_the_same(variant: str, kwargs: Json, tmp_path: Path) -> None:
    spec = planned.spec(variant, where=tmp_path, **kwargs)
    spec_file = build.write_spec(spec, tmp_path / "spec")
    assert provenance.beside(spec_file).is_file()
    # The wheel metadata provider finds it from the spec alone (no path pulled out of CMake text).
    read = wheelmeta.spec_provenance(spec_file)
    assert read == spec.provenance()
    assert read.schema == provenance.SCHEMA and read.variant == variant and read.build_key == spec.key
    assert wheelmeta.Identity.of_provenance(read) == wheelmeta.Identity.of_provenance(spec.provenance())


@pytest.mark.parametrize("defines, backend", [({}, "openssl"), ({"LWS_WITH_MBEDTLS": "ON"}, "mbedtls"),
                                              ({"LWS_WITH_SSL": "OFF"}, "none")])
def test_the_tls_backend_is_recorded(defines: dict[str, str], backend: str) -> None:
    # What the install step (python -m lwsbuild.build.tls) checks the library against.
    recorded = planned.provenance("release", defines=defines).tls
    assert recorded.backend == backend
    assert recorded.links == next(b for b in variants.tls_backends() if b.name == backend).links


def test_the_sanitizer_is_recorded_as_linked(tmp_path: Path) -> None:
    assert planned.provenance("release").sanitizer is None
    tsan = planned.provenance("tsan").sanitizer
    assert tsan is not None and tsan.runtime == "libtsan.so" and not tsan.python
    asan = planned.provenance("asan")
    assert asan.sanitizer is not None and asan.sanitizer.runtime == "libasan.so" and asan.sanitizer.python
    assert asan.sanitizer.python_options == {"ASAN_OPTIONS": {"detect_leaks": "0"}}
    linked = subprocess.run([asan.compiler.path, "-print-file-name=libasan.so"], capture_output=True, text=True,
                            check=False).stdout.strip()
    if not os.path.isabs(linked):
        pytest.skip("this compiler has no ASan runtime")
    # What the compiler's link step takes, resolved: and what smoke preloads.
    assert asan.sanitizer.runtime_path == os.path.realpath(linked)
    assert native.runtime_path(asan) == Path(os.path.realpath(linked))


def _document(**changes: object) -> Json:
    data = planned.provenance("asan").to_json()
    data.update(changes)
    return data


@pytest.mark.parametrize("data, needle", [
    ({k: v for k, v in _document().items() if k != "schema"}, "has no schema version"),
    (_document(schema=provenance.SCHEMA + 1), f"schema {provenance.SCHEMA + 1}; this lwsbuild reads schema"),
    (_document(schema="1"), "schema '1'"),
    ({k: v for k, v in _document().items() if k != "build_key"}, "build_key missing"),
    (_document(lws={**_document()["lws"], "tree_id": 7}), "lws.tree_id is 7, expected a string"),
    (_document(unfixed="no"), "unfixed is 'no', expected true or false"),
    (_document(patches=[{"id": "0001"}]), "patches[0].status, patches[0].title"),
    (_document(sanitizer={**_document()["sanitizer"], "python": 1}), "sanitizer.python is 1"),
    (_document(compiler={"path": "/usr/bin/cc", "version": "12", "id": "cc", "libasan": "/x"}),
     "unknown field(s) compiler.libasan"),
    ([1, 2], "is not a JSON object"),
])
def test_a_file_this_lwsbuild_cannot_read_is_one_line_saying_rebuild(data: object, needle: str) -> None:
    with pytest.raises(ProvenanceError) as caught:
        provenance.parse(data, "the/provenance.json")
    line = caught.value.one_line()
    assert needle in line and line.startswith("the/provenance.json") and "\n" not in line
    assert "rebuild" in line and caught.value.exit_code == 2


def _prefix_with(tmp_path: Path, data: object) -> Path:
    prefix = tmp_path / "prefix"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "lib" / "libwebsockets.so.19").write_bytes(b"")
    (prefix / "include").mkdir()
    (prefix / "include" / "lws_config.h").write_text("#define LWS_WITH_TLS\n")
    (prefix / "share" / "lwsbuild").mkdir(parents=True)
    (prefix / layout.PROVENANCE).write_text(json.dumps(data))
    return prefix


def test_every_reader_refuses_a_newer_schema_in_one_line(tmp_path: Path) -> None:
    newer = _document(schema=provenance.SCHEMA + 1)
    prefix = _prefix_with(tmp_path, newer)
    for args in (["audit", str(prefix)], ["config", "--prefix", str(prefix)], ["smoke", "--prefix", str(prefix)]):
        result = run_cli(*args, cwd=REPO)
        assert result.returncode == 2, (args, result.stderr)
        assert f"schema {provenance.SCHEMA + 1}" in error_line(result), args
    check = subprocess.run([sys.executable, "-m", "lwsbuild.wheel.meta", "check", "0.1.0+lws4.3.5.asan",
                            str(prefix / layout.PROVENANCE)], capture_output=True, text=True, cwd=REPO,
                           check=False)
    assert check.returncode == 2 and error_line(check)
    sbom = subprocess.run([sys.executable, "-m", "lwsbuild.build.sbom", "--provenance", str(prefix / layout.PROVENANCE),
                           "--config", str(prefix / "include" / "lws_config.h"), "--out", str(tmp_path / "s.json")],
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert sbom.returncode == 2 and "schema" in error_line(sbom)
    tls = subprocess.run([sys.executable, "-m", "lwsbuild.build.tls", str(prefix)], capture_output=True, text=True,
                         cwd=REPO, check=False)
    assert tls.returncode == 2 and f"schema {provenance.SCHEMA + 1}" in error_line(tls)


@pytest.mark.parametrize("series_name", ["none", "seed-seed"])
def test_a_series_without_any_fix_is_marked_like_an_unfixed_build(series_name: str) -> None:
    """Issue 21: `--series none` carried no mark; a build with no fix at all is as visible as UNFIXED."""
    from lwsbuild.wheel.meta import Identity

    spec = planned.spec(series_name=series_name)
    described = spec.provenance()
    assert described.marks == ("NO-FIX",)
    assert spec.build_hash.endswith("-NO-FIX")  # lws_get_library_version() shows it
    assert Identity.of_provenance(described).summary.startswith("NO FIX, DO NOT SHIP")
    fixed = planned.spec(series_name="all")
    assert fixed.provenance().marks == () and not fixed.build_hash.endswith("NO-FIX")
    unfixed = planned.spec(series_name="none", unfixed=True)
    assert unfixed.provenance().marks == ("UNFIXED",)  # --unfixed reverts every fix: its own mark
