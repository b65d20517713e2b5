"""Built-in techniques: importing this package registers them by type name."""

from censor_sims.techniques import (
    dns_poison,
    dpi_block,
    ip_block,
    port_block,
    sni_filter,
    udp_throttle,
)

__all__ = ["dns_poison", "dpi_block", "ip_block", "port_block", "sni_filter", "udp_throttle"]
