"""Messenger profiles: apps that look like WhatsApp, Signal and Telegram where censors look.

One module per profile (`signal_like`, `whatsapp_like`, `telegram_like`), each citing the
source of its wire format; `session` holds what they share (connecting, failure classes,
timing), `app` the harness side, `agent` the program that runs inside the hosts.
"""
