"""Built-in techniques: importing this package registers them by type name."""

from censor_sims.techniques import (
    active_probe,
    bandwidth_throttle,
    dns_poison,
    dpi_block,
    fet_block,
    http_filter,
    ip_block,
    port_block,
    protocol_whitelist,
    sni_filter,
    tls_mitm,
    udp_throttle,
)

__all__ = [
    "active_probe",
    "bandwidth_throttle",
    "dns_poison",
    "dpi_block",
    "fet_block",
    "http_filter",
    "ip_block",
    "port_block",
    "protocol_whitelist",
    "sni_filter",
    "tls_mitm",
    "udp_throttle",
]
