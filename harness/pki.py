"""A certificate authority per run, so that every TLS service in a trial has a real chain.

Apps verify server certificates against the run's CA exactly as they would verify a public
one (hostname, EKU, validity), which keeps a censor's TLS interference (a forged certificate,
a stripped handshake) visible as a real TLS failure instead of hiding it behind
`verify_mode=CERT_NONE`. ECDSA P-256 keeps issuing a leaf well under a millisecond or two.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_NAME = "ca.crt"
CA_KEY_NAME = "ca.key"
LEAF_VALID_DAYS = 30
CA_VALID_DAYS = 60
BACKDATE = dt.timedelta(days=1)  # tolerate clock differences between hosts


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_pem(path: Path, data: bytes, private: bool) -> None:
    """Write a PEM file; keys are created 0600 so no other user can read them meanwhile."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class CA:
    """A run CA held in memory; `cert_path` is what clients pass as their trust anchor."""

    directory: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_CERT_NAME

    @property
    def key_path(self) -> Path:
        return self.directory / CA_KEY_NAME

    def issue(
        self,
        stem: str,
        dns_names: list[str],
        ips: list[str],
        out_dir: Path | None = None,
    ) -> tuple[Path, Path]:
        """Issue a server leaf; write `<stem>.crt` and `<stem>.key`, return (cert, key) paths."""
        if not dns_names and not ips:
            raise ValueError("a leaf needs at least one DNS name or IP address")
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        common_name = dns_names[0] if dns_names else ips[0]
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=LEAF_VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        target = out_dir or self.directory
        target.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = target / f"{stem}.crt", target / f"{stem}.key"
        _write_pem(key_path, _key_pem(key), private=True)
        _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
        return cert_path, key_path


def make_ca(directory: Path | str, name: str = "gatecrash run CA") -> CA:
    """Create a fresh CA in `directory` (ca.crt, ca.key); its key never leaves the run."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    ca = CA(directory, cert, key)
    _write_pem(ca.key_path, _key_pem(key), private=True)
    _write_pem(ca.cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return ca
