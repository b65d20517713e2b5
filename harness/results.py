"""What one trial produced: the record written to results.jsonl as soon as the trial ends.

Units are in the field names (`_ms`, `_pct`, `_s`); the metric sources are named in
`MetricSources` so a reader of results.jsonl knows how each figure was obtained.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

# 2: outcome "harness-fault" with `fault`, and `attempt` (a retried trial has several
# records). Version 1 files are still read: they have neither.
SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)

# Outcome classes. "ok" is the only success. Every class but "harness-fault" is what the
# app saw through the network: evidence about the censor ("error" is a failure the app
# could not classify further). "harness-fault" is the harness's own failure (a topology,
# server, agent or tool that broke for a reason the censor did not cause): never evidence,
# never in a success ratio, retried.
Outcome = Literal[
    "ok",
    "dns-failure",
    "reset",
    "timeout",
    "refused",
    "tls-alert",
    "sip-4xx",
    "sip-5xx",
    "no-media",
    "tool-failure",
    "error",
    "harness-fault",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
FAULT_OUTCOME = "harness-fault"

# Where in a trial a fault happened: the runner's phases.
FaultPhase = Literal["topology", "servers", "censor", "tool", "app", "teardown"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DirectionStats(_Model):
    """RTP receive statistics of one direction (RFC 3550 loss and interarrival jitter)."""

    sent: int = 0
    received: int = 0
    expected: int = 0
    lost: int = 0
    loss_pct: float = 0.0
    mean_burst_len: float = 0.0  # mean length of runs of consecutive lost packets
    burst_r: float = 1.0  # ITU-T G.107 BurstR from a two-state Markov fit
    jitter_ms: float = 0.0  # RFC 3550 interarrival jitter, final value
    owd_ms_mean: float | None = None  # one-way delay, hosts share one clock
    owd_ms_p95: float | None = None
    duplicates: int = 0


class CallMetrics(_Model):
    registered: bool = False
    register_ms: float | None = None
    setup_ok: bool = False
    final_status: int | None = None  # final SIP status of the INVITE
    pdd_ms: float | None = None  # INVITE -> first 180/183 (RFC 6076 SRD)
    setup_ms: float | None = None  # INVITE -> 200 OK
    media_s: float = 0.0  # how long media was sent
    transport: str = "udp"
    codec: str = "g711-plc"
    up: DirectionStats | None = None  # client (inside) -> callee (outside)
    down: DirectionStats | None = None  # callee -> client
    r_factor: float | None = None  # ITU-T G.107, worse direction
    mos: float | None = None


class MessageMetrics(_Model):
    connected: bool = False
    connect_ms: float | None = None
    sent: int = 0
    delivered: int = 0
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None


class WorkloadMetrics(_Model):
    """A bystander workload (web, download, dns, conference): what a user who makes no call
    still does, to measure what a censor breaks besides its target. `items` are the page's
    resources, the file, the names, or a meeting's streams; `completed` those fetched /
    verified / answered correctly / received."""

    items: int = 0
    completed: int = 0
    duration_ms: float | None = None  # page load (all resources) / download / all names
    bytes: int = 0  # payload bytes received
    throughput_mbps: float | None = None  # downloads: verified bytes / transfer time
    item_ms_p50: float | None = None  # per resource / name / peer connection, of those done
    item_ms_p95: float | None = None
    tunnel_ms: float | None = None  # office-vpn: VPN connect to handshake done
    failures: list[str] = Field(default_factory=list)  # one line per item not completed

    @property
    def completeness(self) -> float:
        return self.completed / self.items if self.items else 0.0


class WebRtcPair(_Model):
    """The nominated ICE candidate pair as the caller sees it."""

    local_type: str  # host | srflx | relay
    local_transport: str  # udp, or for a relay candidate how the TURN server is reached: tcp | tls
    local_address: str
    remote_type: str
    remote_address: str


class WebRtcMetrics(_Model):
    """WebRTC specifics of a `webrtc` trial; loss, jitter, delay, R and MOS are in `call`."""

    ice_policy: str
    ice_result: str  # connected | failed | timeout | not-tried (signalling failed)
    attempts: list[dict[str, Any]] = Field(default_factory=list)  # in order tried
    winner: str | None = None  # the attempt that connected: udp | tls | tcp
    selected_pair: WebRtcPair | None = None
    signalling_ms: float | None = None  # WebSocket/TLS connect
    ice_connected_ms: float | None = None  # winning attempt's start -> ICE connected
    connected_ms: float | None = None  # winning attempt's start -> DTLS done (connected)
    time_to_connected_ms: float | None = None  # first attempt's start -> DTLS done
    dtls_done: bool = False
    owd_method: str = ""
    emodel_codec: str | None = None  # the harness/scoring/emodel.py codec entry used
    emodel_codec_source: str | None = None  # where its Ie/Bpl come from
    emodel_research_values: bool = False  # True: Ie/Bpl are research values, not ITU-T
    # Sent via the tool's SOCKS5: "host:port" (CONNECT), "udp:host:port" (UDP ASSOCIATE)
    via_proxy: list[str] = Field(default_factory=list)


class ConferenceStream(_Model):
    """One participant's media as another received it (the mesh has every ordered pair)."""

    sender: int
    receiver: int
    sent: int = 0  # RTP packets the sender sent on the pair's connection
    received: int = 0
    loss_pct: float | None = None  # of those sent; None when none was sent
    jitter_ms: float | None = None  # RFC 3550 interarrival jitter at the receiver
    ok: bool = False  # received, with loss within the scenario's conference.max_loss_pct


class ConferenceParticipant(_Model):
    index: int
    outcome: str
    joined: bool = False  # signalling up and every peer connection DTLS done
    join_ms: float | None = None  # agent start -> its last peer connection DTLS done
    signalling_ms: float | None = None  # WebSocket/TLS connect
    connected: int = 0  # peer connections DTLS done (of participants - 1)
    media_from: list[int] = Field(default_factory=list)  # senders whose stream was ok
    relay: list[str] = Field(default_factory=list)  # selected pairs: "relay/udp", ...


class ConferenceMetrics(_Model):
    """A `conference` trial: who joined, whose media reached whom, the worst figures."""

    participants: int
    turn_transport: str  # udp | tcp | tls: each participant's leg to coturn
    all_joined: bool = False
    join_ms_max: float | None = None  # the slowest participant's join, when all joined
    loss_pct_worst: float | None = None  # the worst stream's loss, of streams sent
    media_share_worst: float | None = None  # the worst participant's ok streams / others
    members: list[ConferenceParticipant] = Field(default_factory=list)
    streams: list[ConferenceStream] = Field(default_factory=list)


class Fault(_Model):
    """A harness fault: which phase, what broke (a short class), and the detail."""

    phase: FaultPhase
    kind: str  # e.g. topology-setup, server-not-ready, agent-crashed, tool-start, exception
    detail: str


class TrialResult(_Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    scenario: str
    censor: str
    tool: str
    app: str
    trial: int
    started_at: str  # ISO 8601, UTC
    wall_s: float = 0.0
    outcome: Outcome = "error"
    error: str | None = None
    fault: Fault | None = None  # set exactly when outcome is "harness-fault"
    attempt: int = 0  # 0 first; a retry after a harness fault is attempt 1, 2, ...
    # Objects the trial's tear-down could not remove (left labelled for `gatecrash clean`);
    # the measurement stands, later trials use other names.
    leftovers: list[str] = Field(default_factory=list)
    tool_setup_ms: float | None = None
    tool_version: str | None = None  # what the tool's program said it was (an own build too)
    call: CallMetrics | None = None
    message: MessageMetrics | None = None
    webrtc: WebRtcMetrics | None = None
    workload: WorkloadMetrics | None = None
    conference: ConferenceMetrics | None = None  # with `workload`
    logs: dict[str, str] = Field(default_factory=dict)  # name -> path of a kept log
    # Where the trial's wall time went (ms): topology, servers, censor, tool, app, teardown.
    phases_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def cell(self) -> tuple[str, str, str]:
        return (self.censor, self.tool, self.app)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.censor, self.tool, self.app, self.trial)

    @property
    def is_fault(self) -> bool:
        return self.outcome == FAULT_OUTCOME


def final_attempts(results: Iterable[TrialResult]) -> list[TrialResult]:
    """One record per trial: its last attempt that was not a harness fault, else its last
    attempt (a fault). Order: the order each trial first appears."""
    chosen: dict[tuple[str, str, str, int], TrialResult] = {}
    for result in results:
        held = chosen.get(result.key)
        if (
            held is None
            or (held.is_fault and not result.is_fault)
            or (held.is_fault == result.is_fault and result.attempt >= held.attempt)
        ):
            chosen[result.key] = result
    return list(chosen.values())


def fault_attempts(results: Iterable[TrialResult]) -> dict[tuple[str, str, str], int]:
    """Per cell, how many attempts ended in a harness fault (retried or not)."""
    counts: dict[tuple[str, str, str], int] = {}
    for result in results:
        if result.is_fault:
            counts[result.cell] = counts.get(result.cell, 0) + 1
    return counts
