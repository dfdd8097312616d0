"""igw.common.tls: the self-signed certificate, `--cert-path` loading, real TLS handshakes."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2

from igw.common.health import HealthService
from igw.common.tls import load_credentials, self_signed_pair, server_credentials

WAIT_S = 5.0


def test_self_signed_pair_is_a_p256_server_certificate() -> None:
    cert_pem, key_pem = self_signed_pair("epp.example")
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    now = datetime.datetime.now(datetime.UTC)

    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "epp.example"
    assert cert.issuer == cert.subject
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    assert cert.not_valid_before_utc <= now
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=3649)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_each_pair_is_fresh() -> None:
    (cert_a, key_a), (cert_b, key_b) = self_signed_pair(), self_signed_pair()

    assert cert_a != cert_b
    assert key_a != key_b


def write_pair(directory: Path, common_name: str = "igw") -> bytes:
    """A Kubernetes-TLS-Secret-shaped directory; returns the certificate to trust."""
    cert, key = self_signed_pair(common_name)
    (directory / "tls.crt").write_bytes(cert)
    (directory / "tls.key").write_bytes(key)
    return cert


def test_load_credentials(tmp_path: Path) -> None:
    cert = write_pair(tmp_path)

    loaded_cert, loaded_key = load_credentials(tmp_path)

    assert loaded_cert == cert
    assert loaded_key == (tmp_path / "tls.key").read_bytes()


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        pytest.param([], ["tls.crt", "tls.key"], id="empty-dir"),
        pytest.param(["tls.crt"], ["tls.key"], id="no-key"),
        pytest.param(["tls.key"], ["tls.crt"], id="no-cert"),
    ],
)
def test_load_credentials_names_missing_files(
    tmp_path: Path, present: list[str], missing: list[str]
) -> None:
    for name in present:
        (tmp_path / name).write_bytes(b"x")

    with pytest.raises(FileNotFoundError) as failed:
        load_credentials(tmp_path)

    assert "--cert-path" in str(failed.value)
    assert all(str(tmp_path / name) in str(failed.value) for name in missing)
    assert not any(str(tmp_path / name) in str(failed.value) for name in present)


@asynccontextmanager
async def tls_server(cert_dir: Path | None, *, reload: bool = False) -> AsyncIterator[int]:
    """A health server behind `server_credentials(cert_dir)`; yields its port."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([HealthService(lambda: True).rpc_handler()])
    port = server.add_secure_port("127.0.0.1:0", server_credentials(cert_dir, reload=reload))
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


async def check_over(port: int, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """The status of one health check over TLS (`credentials`) or plaintext (None)."""
    target = f"127.0.0.1:{port}"
    options = (("grpc.ssl_target_name_override", "igw"),)
    channel = (
        grpc.aio.insecure_channel(target)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials, options=options)
    )
    async with channel:
        method = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            await method(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        except grpc.aio.AioRpcError as e:
            return e.code()
        return grpc.StatusCode.OK


async def test_cert_path_certificate_is_served(tmp_path: Path) -> None:
    cert = write_pair(tmp_path)
    async with tls_server(tmp_path) as port:
        trusted = await check_over(port, grpc.ssl_channel_credentials(root_certificates=cert))
        system_roots = await check_over(port, grpc.ssl_channel_credentials())
        other = await check_over(
            port, grpc.ssl_channel_credentials(root_certificates=self_signed_pair()[0])
        )
        plaintext = await check_over(port, None)

    assert trusted is grpc.StatusCode.OK
    assert system_roots is other is plaintext is grpc.StatusCode.UNAVAILABLE


async def served_certificate(port: int) -> bytes:
    """The certificate a TLS server presents, fetched without verifying it (as gateways do)."""
    pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port), timeout=WAIT_S)
    return pem.encode()


async def test_without_cert_path_a_fresh_self_signed_certificate_is_served() -> None:
    async with tls_server(None) as port:
        served = await served_certificate(port)
        trusting_it = await check_over(port, grpc.ssl_channel_credentials(root_certificates=served))
        plaintext = await check_over(port, None)
    async with tls_server(None) as port:
        next_served = await served_certificate(port)

    cert = x509.load_pem_x509_certificate(served)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "igw"
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert trusting_it is grpc.StatusCode.OK
    assert plaintext is grpc.StatusCode.UNAVAILABLE
    assert next_served != served


def trusting(cert: bytes) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=cert)


async def test_reload_serves_a_replaced_pair_to_new_connections(tmp_path: Path) -> None:
    first = write_pair(tmp_path)
    async with tls_server(tmp_path, reload=True) as port:
        assert await check_over(port, trusting(first)) is grpc.StatusCode.OK
        # A Secret update caught half-way: the new certificate beside the old key is not used.
        second, second_key = self_signed_pair()
        (tmp_path / "tls.crt").write_bytes(second)
        assert await check_over(port, trusting(first)) is grpc.StatusCode.OK
        (tmp_path / "tls.key").write_bytes(second_key)
        after = await check_over(port, trusting(second))
        old_trust = await check_over(port, trusting(first))
        served = await served_certificate(port)
    assert after is grpc.StatusCode.OK
    assert old_trust is grpc.StatusCode.UNAVAILABLE
    assert served == second


async def test_without_reload_the_first_pair_stays(tmp_path: Path) -> None:
    first = write_pair(tmp_path)
    async with tls_server(tmp_path) as port:
        write_pair(tmp_path)
        assert await check_over(port, trusting(first)) is grpc.StatusCode.OK


def test_reload_refuses_a_mismatched_pair_at_start(tmp_path: Path) -> None:
    write_pair(tmp_path)
    (tmp_path / "tls.key").write_bytes(self_signed_pair()[1])
    with pytest.raises(ValueError, match=r"tls\.key is not the private key of tls\.crt"):
        server_credentials(tmp_path, reload=True)
