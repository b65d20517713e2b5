"""The `office-vpn` bystander: a remote-access VPN to an office gateway outside, and an
intranet request through it."""
