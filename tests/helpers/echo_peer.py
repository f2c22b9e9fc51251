"""The smoke test's WebSocket echo peer on 127.0.0.1, plain or over TLS, and a throwaway certificate
for it: what the C consumers of tests/test_link_tls.py talk to.

The certificate is made by the `openssl` program (.ci/run installs it) for the name "localhost",
valid for two days, self-signed: the client is given it as its CA file.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lwsbuild.native import smoke


@dataclass(frozen=True)
class Certificate:
    cert: Path  # PEM, also the client's CA file
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(directory: Path) -> Certificate:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "localhost.pem", directory / "localhost.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return Certificate(cert, key)


class EchoPeer(smoke.EchoPeer):
    """lwsbuild's own echo peer (lwsbuild/native/smoke.py), offering no subprotocol; `tls` makes it wss://."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(subprotocol=None, tls=tls)
