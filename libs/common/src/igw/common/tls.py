"""Serving credentials: TLS is on by default, with a self-signed certificate when none is given.

Upstream generates an RSA-4096 certificate at start-up and gateways skip verification. We
generate an ECDSA P-256 certificate instead: equally unverified by design, but made in
milliseconds rather than seconds, which matters for start-up and for tests that start servers.
With `--cert-path DIR`, `DIR/tls.crt` and `DIR/tls.key` are used (the layout of a Kubernetes
TLS Secret).

Reload (upstream's `--enable-cert-reload`): upstream watches the directory with fsnotify and
debounces 250 ms. We let gRPC ask instead: with dynamic server credentials, gRPC calls
`ReloadingCertificate` before every new TLS handshake; it compares the two files' identity
(inode, size, mtime: a Secret volume update swaps a symlink, which changes all three) and loads
the pair again only when they changed. A half-written update (a new certificate with the old key)
fails the key check and is not used: the old pair stays in service until both files agree, so
no debounce is needed and no handshake ever sees a broken pair. Connections already open keep
the certificate they were made with, as with upstream.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import cast

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ReloadingCertificate",
    "check_pair",
    "load_credentials",
    "self_signed_pair",
    "server_credentials",
]

_log = structlog.get_logger(__name__)

_VALIDITY = datetime.timedelta(days=3650)


def self_signed_pair(common_name: str = "igw") -> tuple[bytes, bytes]:
    """A fresh (certificate PEM, private key PEM) pair valid for ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Inference Ext"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def load_credentials(cert_dir: Path) -> tuple[bytes, bytes]:
    """(certificate, key) PEM from `cert_dir/tls.crt` and `cert_dir/tls.key`."""
    cert, key = cert_dir / "tls.crt", cert_dir / "tls.key"
    missing = [str(p) for p in (cert, key) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"--cert-path: missing {', '.join(missing)}")
    return cert.read_bytes(), key.read_bytes()


def check_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """Raises `ValueError` unless `key_pem` is the private key of `cert_pem`'s public key."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if cert.public_key() != key.public_key():
        raise ValueError("tls.key is not the private key of tls.crt")


class ReloadingCertificate:
    """gRPC's certificate fetcher for `cert_dir`: a new configuration when the files changed.

    Called by gRPC (on its own threads) before each new handshake; returns None to keep the
    current certificate. See the module docstring.
    """

    def __init__(self, cert_dir: Path) -> None:
        self._dir = cert_dir
        cert, key = load_credentials(cert_dir)
        check_pair(cert, key)
        self.initial = grpc.ssl_server_certificate_configuration([(key, cert)])
        self._stamp = self._identity()

    def _identity(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            stats = [(self._dir / name).stat() for name in ("tls.crt", "tls.key")]
        except OSError:
            return None
        return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        stamp = self._identity()
        if stamp is None or stamp == self._stamp:
            return None
        try:
            cert, key = load_credentials(self._dir)
            check_pair(cert, key)
        except (OSError, ValueError) as e:
            # Likely caught mid-update: keep serving the old pair; the next change retries.
            _log.warning("certificate_reload_skipped", cert_path=str(self._dir), reason=str(e))
            return None
        finally:
            self._stamp = stamp
        _log.info("certificate_reloaded", cert_path=str(self._dir))
        return grpc.ssl_server_certificate_configuration([(key, cert)])


def server_credentials(cert_dir: Path | None, *, reload: bool = False) -> grpc.ServerCredentials:
    """gRPC server credentials from `cert_dir`, or from a fresh self-signed pair.

    `reload` serves `cert_dir`'s files as they change (module docstring); it has no effect on a
    self-signed certificate, which never changes.
    """
    if reload and cert_dir is not None:
        fetcher = ReloadingCertificate(cert_dir)
        # gRPC documents None as "keep the current certificate"; typeshed's stub omits it.
        keep_or_replace = cast("Callable[[], grpc.ServerCertificateConfiguration]", fetcher)
        return grpc.dynamic_ssl_server_credentials(fetcher.initial, keep_or_replace)
    cert, key = load_credentials(cert_dir) if cert_dir else self_signed_pair()
    return grpc.ssl_server_credentials([(key, cert)])
