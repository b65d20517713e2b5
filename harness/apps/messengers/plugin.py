"""The messengers app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

from __future__ import annotations

from harness.apps.messengers.options import (
    SignalLikeOptions,
    TelegramLikeOptions,
    WhatsAppLikeOptions,
)
from harness.apps.plugin import AppPlugin

SIGNAL_LIKE = AppPlugin(
    kind="message",
    options=SignalLikeOptions,
    app="harness.apps.messengers.signal_like:SignalLikeApp",
    summary="messages that look like Signal on the wire (TLS 443, WebSocket)",
)
WHATSAPP_LIKE = AppPlugin(
    kind="message",
    options=WhatsAppLikeOptions,
    app="harness.apps.messengers.whatsapp_like:WhatsAppLikeApp",
    summary="messages that look like WhatsApp on the wire (Noise over 443/5222)",
)
TELEGRAM_LIKE = AppPlugin(
    kind="message",
    options=TelegramLikeOptions,
    app="harness.apps.messengers.telegram_like:TelegramLikeApp",
    summary="messages that look like Telegram on the wire (MTProto transport)",
)
