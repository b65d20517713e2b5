"""sing-box hysteria2 (QUIC) and VLESS (TLS) across a censor that blocks the direct path:
an HTTP fetch and a UDP echo through the client's SOCKS5 port."""

from __future__ import annotations

import pytest

from harness.tools.sing_box import SingBoxHysteria2, SingBoxVless
from tests.e2e.test_tools_vpn_support import (
    assert_carries,
    assert_direct_blocked,
    blocked_trial,
    measure,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("tool_class", [SingBoxHysteria2, SingBoxVless])
def test_http_and_udp_through_sing_box(tool_class, topology, supervisor, tmp_path) -> None:
    tool = tool_class()
    with blocked_trial(topology, supervisor, tmp_path, tool.name) as ctx:
        assert_direct_blocked(ctx)
        endpoint = tool.start(ctx)
        assert endpoint.socks and endpoint.udp == (tool.udp != "none")
        assert_carries(tool, measure(ctx, endpoint))
