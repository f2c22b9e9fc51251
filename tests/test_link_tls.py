"""Link kinds and TLS backends, as a packager chooses them with lws's own options.

- `-D LWS_WITH_STATIC=ON` adds lib/libwebsockets.a beside the shared library: a C program links it
  through `pkg-config --static libwebsockets_static` and through the CMake target `websockets`, talks
  to a WebSocket peer on loopback (ws:// and wss://), and needs no libwebsockets.so.
- The TLS backend (variants.toml [tls.backend.*]: OpenSSL, mbedTLS, none) is recorded in
  provenance.json and checked on the library by the install step; each passes `lwsbuild smoke`, and
  a C consumer of each TLS build makes a wss:// round trip with a certificate it must verify.

Builds here (each once per session, beside the conftest ones): the static one, mbedTLS, no TLS.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, Cli, CliResult, run_cli
from helpers.checks import error_line
from helpers.echo_peer import Certificate, EchoPeer, make_certificate
from lwsbuild.build import cmake as build
from lwsbuild.build import tls, variants
from lwsbuild.common import prefix as prefix_layout

CONSUMER_C = REPO / "tests" / "data" / "ws_echo_consumer.c"
STATIC_CMAKE = """
cmake_minimum_required(VERSION 3.20)
project(consumer LANGUAGES C)
find_package(libwebsockets CONFIG REQUIRED)
add_executable(ws_echo_consumer ws_echo_consumer.c)
target_link_libraries(ws_echo_consumer PRIVATE websockets)  # the static library's target
"""
BACKENDS = [backend.name for backend in variants.tls_backends()]



# --- fast: the data and the checks -----------------------------------------------------------

@pytest.mark.parametrize("ssl_value, mbedtls_value, wanted", [
    (None, None, "openssl"), ("ON", None, "openssl"), ("1", "OFF", "openssl"), ("yes", "0", "openssl"),
    (None, "ON", "mbedtls"), ("ON", "2", "mbedtls"),
    ("OFF", None, "none"), ("0", "ON", "none"), ("", "OFF", "none"), ("x-NOTFOUND", "ON", "none"),
])
def test_the_tls_options_select_exactly_one_backend(ssl_value: str | None, mbedtls_value: str | None,
                                                    wanted: str) -> None:
    options = {k: v for k, v in {"LWS_WITH_SSL": ssl_value, "LWS_WITH_MBEDTLS": mbedtls_value}.items() if v is not None}
    assert variants.tls_backend({"LWS_MAX_SMP": "8", **options}).name == wanted


def _backend(name: str) -> variants.TlsBackend:
    return next(b for b in variants.tls_backends() if b.name == name)


def test_every_backend_is_a_complete_table() -> None:
    assert {"openssl", "mbedtls", "none"} <= set(BACKENDS) and variants.tls_backend({}).name == "openssl"
    for backend in variants.tls_backends():
        assert backend.description and set(backend.cmake) <= set(variants._data()["tls"]["lws_defaults"])
        assert variants.tls_backend(backend.cmake) == backend  # its own options select it
        assert bool(backend.links) == bool(backend.debian)  # a backend that links something names its package


def test_the_install_check_names_a_library_linking_the_wrong_backend() -> None:
    openssl, mbedtls, none = (_backend(name) for name in ("openssl", "mbedtls", "none"))
    mbed_sonames = ["libmbedtls.so.14", "libmbedx509.so.1", "libmbedcrypto.so.7", "libc.so.6"]
    assert tls.mismatch(mbedtls, mbed_sonames) is None
    assert tls.mismatch(openssl, ["libssl.so.3", "libcrypto.so.3", "libc.so.6"]) is None
    assert tls.mismatch(none, ["libc.so.6"]) is None
    why = tls.mismatch(openssl, mbed_sonames)
    assert why is not None and "lacks libssl, libcrypto" in why and "links libmbedcrypto, libmbedtls, libmbedx509" in why
    why = tls.mismatch(none, ["libssl.so.3", "libcrypto.so.3", "libc.so.6"])
    assert why is not None and why.startswith("links libcrypto, libssl of another backend")
    assert tls.mismatch(mbedtls, ["libc.so.6"]) == "lacks libmbedtls, libmbedx509, libmbedcrypto (it needs: libc.so.6)"


def test_a_static_only_build_is_refused_before_any_download(tmp_path: Path) -> None:
    result = run_cli("build", "-D", "LWS_WITH_SHARED=OFF", cache=tmp_path)
    assert result.returncode == 2
    line = error_line(result)
    assert "LWS_WITH_SHARED=OFF" in line and "-D LWS_WITH_STATIC=ON" in line
    assert not (tmp_path / "downloads").exists() and not (tmp_path / "trees").exists()


def _spec(options: dict[str, str]) -> build.BuildSpec:
    variant = variants.get("release")
    return build.BuildSpec(None, variant, {**variant.cmake, **options}, (),  # type: ignore[arg-type]  # no tree needed
                           build.Compiler("/usr/bin/cc", "cc 12"))


def test_a_cached_prefix_is_complete_with_the_soname_layout_json_names(tmp_path: Path) -> None:
    # Any release line's SONAME (4.5: .so.21), not 4.3's alone; the static library when it was built.
    for name in ("lib/libwebsockets.so.21", "share/lwsbuild/provenance.json", "bin/lws-stress"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    layout = tmp_path / prefix_layout.LAYOUT
    layout.write_text(json.dumps({"soname": "libwebsockets.so.21"}))
    assert build.broken(tmp_path, _spec({})) is None
    assert build.broken(tmp_path, _spec({"LWS_WITH_STATIC": "ON"})) == "lib/libwebsockets.a missing"
    (tmp_path / "lib" / "libwebsockets.a").write_bytes(b"")
    assert build.broken(tmp_path, _spec({"LWS_WITH_STATIC": "ON"})) is None
    layout.write_text(json.dumps({"soname": "libwebsockets.so.22"}))
    assert build.broken(tmp_path, _spec({})) == "lib/libwebsockets.so.22 missing"
    layout.write_text("{}")
    assert build.broken(tmp_path, _spec({})) == f"{prefix_layout.LAYOUT} names no library (soname)"


# --- builds -------------------------------------------------------------------------------------

def _built(cli: Cli, *defines: str) -> Path:
    args = [item for define in defines for item in ("-D", define)]
    result = cli("build", "--json", *args)
    assert result.returncode == 0, result.stderr
    return Path(result.json["prefix"])


@pytest.fixture(scope="module")
def static_prefix(cli: Cli) -> Path:
    return _built(cli, "LWS_WITH_STATIC=ON")


@pytest.fixture(scope="module", params=BACKENDS)
def tls_build(cli: Cli, request: pytest.FixtureRequest) -> tuple[variants.TlsBackend, Path]:
    """A release build of each TLS backend, with only the -D that differ from the default backend's
    options: the default backend's build is conftest's release build (shared, not built again)."""
    backend = _backend(request.param)
    default = variants.tls_backend({})
    defines = [f"{k}={v}" for k, v in backend.cmake.items()
               if variants.cmake_truthy(v) != variants.cmake_truthy(default.cmake.get(k, "OFF"))]
    prefix: Path = _built(cli, *defines) if defines else request.getfixturevalue("release_prefix")
    return backend, prefix


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls-peer"))


def _run(*command: str | Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], check=False, capture_output=True, text=True, timeout=timeout,
                          env=env)


def _ok(result: subprocess.CompletedProcess[str] | CliResult) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout.strip()


def _needed(program: Path) -> list[str]:
    return list(tls.needed(program))


def _echo(program: Path, certificate: Certificate | None = None, ca: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the consumer against a fresh peer (wss:// when a certificate is given; `ca` what it trusts)."""
    with EchoPeer(certificate.server_context() if certificate else None) as peer:
        args = [str(program), str(peer.port), *([str(ca or certificate.cert)] if certificate else [])]
        result = _run(*args, timeout=60, env={"PATH": "/usr/bin:/bin"})  # no LD_LIBRARY_PATH: the rpath finds lws
    if result.returncode == 0:
        assert peer.close_codes == [1000], peer.close_codes
    return result


def _cc(prefix_flags: list[str], out: Path) -> Path:
    _ok(_run("cc", "-Wall", "-Wextra", "-Werror", "-o", out, CONSUMER_C, *prefix_flags))
    return out


# --- link kinds --------------------------------------------------------------------------------

def _static_only(program: Path) -> None:
    """The program carries lws itself: no libwebsockets.so directly or through anything it loads."""
    assert not [n for n in _needed(program) if n.startswith("libwebsockets")], _needed(program)
    loaded = _ok(_run("ldd", program, timeout=60))
    assert "libwebsockets" not in loaded, loaded
    assert "libssl.so" in loaded  # the TLS library the static archive needs came through the link line


@pytest.mark.build
def test_a_static_build_installs_the_static_library_beside_the_shared_one(static_prefix: Path,
                                                                          release_prefix: Path) -> None:
    layout = json.loads((static_prefix / prefix_layout.LAYOUT).read_text())
    assert (static_prefix / "lib" / layout["soname"]).is_file() and (static_prefix / prefix_layout.STATIC_LIBRARY).is_file()
    pc = (static_prefix / "lib" / "pkgconfig" / "libwebsockets_static.pc").read_text()
    assert "prefix=${pcfiledir}/../.." in pc and "Libs.private: -lssl -lcrypto" in pc and "rpath" not in pc
    provenance = json.loads((static_prefix / "share" / "lwsbuild" / "provenance.json").read_text())
    assert provenance["cmake_options"]["LWS_WITH_STATIC"] == "ON" and provenance["tls"]["backend"] == "openssl"
    # The shared library still loads and works: the smoke client is the same.
    assert _ok(run_cli("smoke", "--prefix", str(static_prefix), timeout=120)).startswith("lws smoke: OK")
    # The default build ships no static files.
    assert not (release_prefix / prefix_layout.STATIC_LIBRARY).exists()
    assert not (release_prefix / "lib" / "pkgconfig" / "libwebsockets_static.pc").exists()


@pytest.mark.build
@pytest.mark.skipif(shutil.which("pkg-config") is None, reason="pkg-config is not installed")
def test_a_static_consumer_links_with_pkg_config_static(static_prefix: Path, certificate: Certificate,
                                                       tmp_path: Path) -> None:
    flags = _ok(_run("pkg-config", "--static", "--cflags", "--libs", "libwebsockets_static", timeout=60,
                     env={"PATH": "/usr/bin:/bin", "PKG_CONFIG_PATH": str(static_prefix / "lib" / "pkgconfig")}))
    assert "-lssl" in flags.split()  # Libs.private, which lws leaves empty
    program = _cc(shlex.split(flags), tmp_path / "consumer")
    _static_only(program)
    assert _ok(_echo(program)).endswith("echo ok")
    assert _ok(_echo(program, certificate)).endswith("echo ok")


@pytest.mark.build
def test_a_static_consumer_links_with_the_cmake_static_target(static_prefix: Path, certificate: Certificate,
                                                             tmp_path: Path) -> None:
    shutil.copy(CONSUMER_C, tmp_path / CONSUMER_C.name)
    (tmp_path / "CMakeLists.txt").write_text(STATIC_CMAKE)
    _ok(_run("cmake", "-S", tmp_path, "-B", tmp_path / "build", f"-DCMAKE_PREFIX_PATH={static_prefix}"))
    _ok(_run("cmake", "--build", tmp_path / "build"))
    program = tmp_path / "build" / "ws_echo_consumer"
    _static_only(program)
    assert _ok(_echo(program)).endswith("echo ok")
    assert _ok(_echo(program, certificate)).endswith("echo ok")


# --- TLS backends ------------------------------------------------------------------------------

@pytest.mark.build
def test_each_tls_backend_is_recorded_linked_and_passes_the_smoke(tls_build: tuple[variants.TlsBackend, Path],
                                                                 certificate: Certificate, tmp_path: Path) -> None:
    backend, prefix = tls_build
    name = backend.name
    provenance = json.loads((prefix / "share" / "lwsbuild" / "provenance.json").read_text())
    assert provenance["tls"] == {"backend": name, "links": list(backend.links)}
    layout = json.loads((prefix / prefix_layout.LAYOUT).read_text())
    linked = {soname.split(".so")[0] for soname in tls.needed(prefix / "lib" / layout["soname"])}
    assert set(backend.links) <= linked
    assert not linked & {lib for other in variants.tls_backends() if other != backend for lib in other.links}
    assert layout["config"]["LWS_WITH_TLS"] is bool(backend.links)
    assert layout["config"]["LWS_WITH_MBEDTLS"] is (name == "mbedtls")

    smoke = run_cli("smoke", "--prefix", str(prefix), "--json", timeout=120)
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.json["ok"] is True and len(smoke.json["messages"]) == 3

    flags = shlex.split(_ok(run_cli("config", "--prefix", str(prefix), "--cflags", "--libs")))
    program = _cc(flags, tmp_path / "consumer")
    assert _ok(_echo(program)).endswith("echo ok")
    if backend.links:
        assert _ok(_echo(program, certificate)).endswith("echo ok")
        # The certificate is really checked: trusting another CA, the handshake fails.
        other = make_certificate(tmp_path / "other-ca")
        refused = _echo(program, certificate, ca=other.cert)
        assert refused.returncode == 1 and "echo FAILED" in refused.stdout, refused.stdout + refused.stderr
    else:
        # No TLS step can run: the consumer and the smoke client each say so in one line.
        refused = _echo(program, certificate)
        assert refused.returncode == 3 and "has no TLS" in refused.stderr
        with EchoPeer(certificate.server_context()) as peer:
            wss = run_cli("smoke", "--prefix", str(prefix), "--url", f"wss://127.0.0.1:{peer.port}/echo",
                          "--timeout", "10")
        assert wss.returncode == 7
        assert "needs TLS but this lws build has none" in error_line(wss)
