"""The `xmpp` app: messages between two accounts of a Prosody server."""
