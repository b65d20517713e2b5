"""The `sip` app: gatecrash's own SIP user agents (register, INVITE, RTP both ways) through
Kamailio, with the call's media scored by the E-model."""
