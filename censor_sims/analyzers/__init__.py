"""Protocol analyzers of the censor's DPI engine: they see and publish, rules decide.

    from censor_sims.analyzers import FlowInfo, classify
    props = classify(["tls", "fet"], FlowInfo("tcp", "10.0.0.2", 40000, "10.0.0.9", 443),
                     [(False, client_hello_bytes)])
    props["tls"]["sni"]

Importing the package registers every analyzer in `ANALYZERS` by name.
"""

from censor_sims.analyzers import (
    dns,
    dtls,
    fet,
    http,
    mtproto,
    openvpn,
    quic,
    rtp,
    sip,
    ssh,
    stun,
    tls,
    whatsapp,
    wireguard,
    xmpp,
)
from censor_sims.analyzers.base import ANALYZERS, Analyzer, FlowInfo, Stream, get, names
from censor_sims.analyzers.flow import FlowAnalysis, classify

__all__ = [
    "ANALYZERS",
    "Analyzer",
    "FlowAnalysis",
    "FlowInfo",
    "Stream",
    "classify",
    "dns",
    "dtls",
    "fet",
    "get",
    "http",
    "mtproto",
    "names",
    "openvpn",
    "quic",
    "rtp",
    "sip",
    "ssh",
    "stun",
    "tls",
    "whatsapp",
    "wireguard",
    "xmpp",
]
