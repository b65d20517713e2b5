"""Media measurement every call app shares: RTP receiver statistics (RFC 3550 loss, jitter,
bursts) and rating a call by the E-model (ITU-T G.107, harness/scoring/emodel.py). The sip,
baresip and webrtc apps and the pcap cross-check all read their figures through here."""
