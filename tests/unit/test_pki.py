"""The run CA issues leaves that OpenSSL and Python's ssl accept for the names they carry."""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from harness.pki import CA, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    return make_ca(tmp_path_factory.mktemp("ca"))


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_files_and_constraints(ca: CA) -> None:
    cert = _load(ca.cert_path)
    assert cert.subject == cert.issuer
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.key_path.stat().st_mode & 0o077 == 0, "CA key must not be readable by others"


def test_leaf_san_eku_and_validity(ca: CA) -> None:
    cert_path, key_path = ca.issue("chat", ["chat.test", "alt.chat.test"], ["10.77.0.139"])
    cert = _load(cert_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["chat.test", "alt.chat.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.77.0.139")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.days == 31  # one day back-dated + 30 days ahead
    assert key_path.stat().st_mode & 0o077 == 0
    cert.verify_directly_issued_by(ca.cert)


def test_openssl_verifies_chain_name_and_purpose(ca: CA) -> None:
    cert_path, _ = ca.issue("chat-ossl", ["chat.test"], ["10.77.0.139"])

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        argv = ["openssl", "verify", "-CAfile", str(ca.cert_path), "-purpose", "sslserver"]
        return subprocess.run([*argv, *extra, str(cert_path)], capture_output=True, text=True)

    assert verify("-verify_hostname", "chat.test").returncode == 0
    assert verify("-verify_ip", "10.77.0.139").returncode == 0
    assert verify("-verify_hostname", "other.test").returncode != 0


def test_python_ssl_accepts_leaf_against_run_ca_only(ca: CA, tmp_path: Path) -> None:
    """A TLS handshake in memory: the client trusts only the run CA and checks the name."""
    cert_path, key_path = ca.issue("chat-ssl", ["chat.test"], [])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)

    def handshake(client_ctx: ssl.SSLContext, name: str) -> None:
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_ctx.wrap_bio(c_in, c_out, server_hostname=name)
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        for _ in range(10):
            for side, out, peer_in in ((client, c_out, s_in), (server, s_out, c_in)):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
                peer_in.write(out.read())
            if client.version() and server.version():
                return
        raise AssertionError("handshake did not finish")

    handshake(ssl.create_default_context(cafile=str(ca.cert_path)), "chat.test")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ssl.create_default_context(cafile=str(ca.cert_path)), "evil.test")
    other = make_ca(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ssl.create_default_context(cafile=str(other.cert_path)), "chat.test")


def test_issue_is_fast_and_can_target_another_dir(ca: CA, tmp_path: Path) -> None:
    start = time.perf_counter()
    for i in range(20):
        cert_path, _ = ca.issue(f"leaf{i}", [f"h{i}.test"], ["10.0.0.1"], out_dir=tmp_path)
    per_leaf_ms = (time.perf_counter() - start) * 1000 / 20
    assert per_leaf_ms < 50, f"{per_leaf_ms:.1f} ms per leaf"
    assert cert_path.parent == tmp_path


def test_leaf_needs_a_name(ca: CA) -> None:
    with pytest.raises(ValueError):
        ca.issue("nameless", [], [])
