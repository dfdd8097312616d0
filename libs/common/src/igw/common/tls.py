"""Serving credentials: TLS is on by default, with a self-signed certificate when none is given.

Upstream generates an RSA-4096 certificate at start-up and gateways skip verification. We
generate an ECDSA P-256 certificate instead: equally unverified by design, but made in
milliseconds rather than seconds, which matters for start-up and for tests that start servers.
With `--cert-path DIR`, `DIR/tls.crt` and `DIR/tls.key` are used (the layout of a Kubernetes
TLS Secret).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["load_credentials", "self_signed_pair", "server_credentials"]

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


def server_credentials(cert_dir: Path | None) -> grpc.ServerCredentials:
    """gRPC server credentials from `cert_dir`, or from a fresh self-signed pair."""
    cert, key = load_credentials(cert_dir) if cert_dir else self_signed_pair()
    return grpc.ssl_server_credentials([(key, cert)])
