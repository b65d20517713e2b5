"""Built-in techniques: importing this package registers them by type name."""

from censor_sims.techniques import ip_block, port_block, udp_throttle

__all__ = ["ip_block", "port_block", "udp_throttle"]
