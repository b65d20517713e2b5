"""obfs4 as a manifest tool (tool.yaml) and its client-side SOCKS5 relay (relay.py)."""
