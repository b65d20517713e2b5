"""The `baresip` app: the real, unmodified baresip placing the same call as `sip`."""
