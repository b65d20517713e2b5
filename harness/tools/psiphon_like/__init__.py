"""A Psiphon-like reference tool: OSSH (obfuscated SSH) tunnel, SOCKS5 client, UDPGW for UDP.

Modelled on Psiphon-Labs/psiphon-tunnel-core, whose Go client and server cannot be built here.
"""
