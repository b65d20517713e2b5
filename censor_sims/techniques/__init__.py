"""Built-in techniques: importing this package registers them by type name."""

from censor_sims.techniques import (
    dns_poison,
    dpi_block,
    fet_block,
    ip_block,
    port_block,
    protocol_whitelist,
    sni_filter,
    udp_throttle,
)

__all__ = [
    "dns_poison",
    "dpi_block",
    "fet_block",
    "ip_block",
    "port_block",
    "protocol_whitelist",
    "sni_filter",
    "udp_throttle",
]
