"""Iran 2020's protocol filter fingerprints each of a flow's first client data packets."""

from __future__ import annotations

import os

import pytest

from censor_sims.techniques.protocol_whitelist import looks_allowed

CHANGE_CIPHER_SPEC = bytes([0x14, 0x03, 0x03, 0x00, 0x01, 0x01])  # TLS 1.3 compat mode


@pytest.mark.parametrize(
    "record",
    [
        bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + os.urandom(32),  # ClientHello
        CHANGE_CIPHER_SPEC,  # a TLS 1.3 client's second packet
        CHANGE_CIPHER_SPEC + bytes([0x17, 0x03, 0x03, 0x00, 0x35]) + os.urandom(0x35),
        bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00]),  # alert
        bytes([0x17, 0x03, 0x03, 0x00, 0x20]) + os.urandom(32),  # application data
    ],
)
def test_every_tls_record_type_is_tls(record: bytes) -> None:
    assert looks_allowed(record) == "tls"


@pytest.mark.parametrize(
    "payload",
    [bytes([0x13, 0x03, 0x03, 0x00]), bytes([0x18, 0x03, 0x03, 0x00]), b"SSH-2.0-OpenSSH_9.2\r\n",
     bytes([0x16, 0x02, 0x00, 0x00])],
)  # fmt: skip
def test_near_misses_are_not(payload: bytes) -> None:
    assert looks_allowed(payload) is None
