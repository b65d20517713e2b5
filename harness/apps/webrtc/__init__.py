"""The `webrtc` app: two aiortc peers, coturn as STUN/TURN, signalling over WebSocket/TLS."""
