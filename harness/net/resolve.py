"""Name lookups against an explicit resolver address.

Apps resolve their servers' names through the run's own resolver (never the host's
/etc/resolv.conf), so that DNS censorship is seen exactly where a real app would see it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random

from dnslib import QTYPE, RCODE, DNSRecord


class DnsFailure(Exception):
    """The name could not be resolved: timeout, NXDOMAIN, SERVFAIL or no A record."""


class _Query(asyncio.DatagramProtocol):
    def __init__(self, packet: bytes, qid: int) -> None:
        self.packet, self.qid = packet, qid
        self.answer: asyncio.Future[DNSRecord] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.sendto(self.packet)  # type: ignore[attr-defined]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            record = DNSRecord.parse(data)
        except Exception:  # a malformed reply is ignored like a real stub resolver does
            return
        if record.header.id == self.qid and not self.answer.done():
            self.answer.set_result(record)

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable on the connected socket (nothing listens on port 53, or a censor
        # rejects the query): fail this attempt now instead of waiting out the timeout.
        if not self.answer.done():
            self.answer.set_exception(exc)


async def lookup_a(
    name: str, resolver: str, port: int = 53, timeout: float = 2.0, attempts: int = 2
) -> tuple[list[str], str]:
    """Every A address the resolver gave for `name`, in answer order, and what happened:
    "answer", "timeout", "resolver unreachable (...)", the RCODE's name, or "no A record"."""
    loop = asyncio.get_running_loop()
    last = "timeout"
    for _ in range(attempts):
        query = DNSRecord.question(name, "A")
        query.header.id = random.randrange(1, 65536)
        transport, proto = await loop.create_datagram_endpoint(
            lambda q=query: _Query(q.pack(), q.header.id), remote_addr=(resolver, port)
        )
        try:
            reply = await asyncio.wait_for(proto.answer, timeout)
        except TimeoutError:
            last = "timeout"
            continue
        except OSError as exc:
            last = f"resolver unreachable ({exc.strerror or exc})"
            continue
        finally:
            transport.close()
        if reply.header.rcode != RCODE.NOERROR:
            return [], str(RCODE.get(reply.header.rcode))
        addresses = [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]
        return addresses, "answer" if addresses else "no A record"
    return [], last


async def resolve_a(
    name: str, resolver: str, port: int = 53, timeout: float = 2.0, attempts: int = 2
) -> str:
    """Return the first IPv4 address for `name`; an IP literal is returned as it is."""
    try:
        return str(ipaddress.IPv4Address(name))
    except ValueError:
        pass
    addresses, what = await lookup_a(name, resolver, port, timeout, attempts)
    if addresses:
        return addresses[0]
    raise DnsFailure(f"{name}: {what} (resolver {resolver})")
