"""Local S3 endpoints for the benchmarks, each in its own process: moto's server, or the lean
TLS endpoint of ``bench/lean_s3.py``; started, waited for until they listen, and stopped.

Both benchmarks that talk to S3 (``item_path_tls.py``, ``two_core_scaling.py``) start their
server here, so the wait has one deadline and one way to report a server that died.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
LISTEN_DEADLINE = 60.0  # seconds for a server to accept connections
STOP_DEADLINE = 10.0


@dataclass(frozen=True)
class Endpoint:
    """A server process and the URL to point ``AWS_ENDPOINT_URL`` at."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    errors: IO[bytes]  # what the server writes to stderr

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are the 14th and 15th fields of the line; the 3rd is fields[0].
        ticks = int(fields[11]) + int(fields[12])
        return ticks / _clock_ticks()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE)
        self.errors.close()


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "server.crt"
    key_path = directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def wait_until_listening(
    process: subprocess.Popen[bytes], port: int, name: str, errors: IO[bytes]
) -> None:
    """Return once ``process`` accepts connections on ``port``; exit if it dies (with the end
    of what it wrote to ``errors``) or the deadline passes (killing it)."""
    deadline = time.monotonic() + LISTEN_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors.seek(0)
            error = errors.read().decode(errors="replace")
            raise SystemExit(f"the {name} exited with {process.returncode}: {error[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        return
    process.kill()
    raise SystemExit(f"the {name} did not listen within {LISTEN_DEADLINE:g} s")


def _start(name: str, command: list[str], port: int, scheme: str) -> Endpoint:
    # A file, not a pipe: a server that logs every request would block on a full pipe.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
    wait_until_listening(process, port, name, errors)
    host = "localhost" if scheme == "https" else "127.0.0.1"
    return Endpoint(name, f"{scheme}://{host}:{port}", process, errors)


def start_moto(tls: tuple[Path, Path] | None = None) -> Endpoint:
    """moto's server (pure Python, every S3 call), over TLS when given a certificate and key."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    if tls is not None:
        command += ["--ssl-cert", str(tls[0]), "--ssl-key", str(tls[1])]
    return _start("moto S3 server", command, port, "https" if tls else "http")


def start_lean(tls: tuple[Path, Path]) -> Endpoint:
    """The lean TLS endpoint: ranged GETs and checked multipart uploads, little else."""
    port = free_port()
    command = [
        *(sys.executable, str(HERE / "lean_s3.py"), "--port", str(port)),
        *("--cert", str(tls[0]), "--key", str(tls[1])),
    ]
    return _start("lean S3 endpoint", command, port, "https")
