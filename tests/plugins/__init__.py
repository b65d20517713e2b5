"""Plug-ins that live outside harness/ and censor_sims/, each in one package of its own: the
proof that an app or a technique is added in one place (tests/e2e/test_plugins.py)."""
