"""Drives one real, unmodified baresip inside a trial's host: `python -m
harness.apps.baresip.agent caller|callee ...`.

The agent starts baresip with the trial's generated config directory (its stdout kept there
as baresip.log), connects to its ctrl_tcp (one connection for commands and events), creates
the account (`uanew`) and waits for REGISTER_OK. `callee` prints {"event": "registered"},
lets baresip auto-answer one call and waits for it to close. `caller` dials and keeps the
call up for --duration seconds after CALL_ESTABLISHED. Both then quit baresip (which
flushes its call report), read the rtcpsummary line and the rtp_stats table from its log
and print {"event": "result"}. Every CALL_RTCP event's statistics (what baresip knew at
each RTCP report, every 5 s) are kept in `rtcp_log`, the last one as `rtcp`.

A drained end, so that the packet counters of the two instances match: each side stops
sending --duration (callee: --media-seconds) after its CALL_ESTABLISHED by switching its
audio source to an aubridge device no player feeds (baresip's own `ausrc` command; no
frames, no RTP), and the caller hangs up DRAIN_S later, when what was in flight has
arrived. Hanging up at once would cut the callee's last packets off: the caller stops
receiving at its hang-up, the callee sends until the BYE reaches it.

Outcomes as in the SIP agent: ok | timeout | refused | sip-4xx | sip-5xx | no-media |
error (baresip's DNS lookups are inside it: a failed lookup shows as its REGISTER error).
Times are milliseconds from time.monotonic(), measured here at the ctrl_tcp events.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.agent_io import emit, ms_since
from harness.apps.baresip.ctrl import CtrlClient, CtrlError
from harness.apps.baresip.report import parse_summary, parse_table

START_TIMEOUT_S = 5.0
HANGUP_TIMEOUT_S = 4.0
QUIT_TIMEOUT_S = 1.0  # per step: quit command, SIGTERM, second SIGTERM (exits at once)
DRAIN_S = 1.0  # > the ACK's and the last packets' queueing delay behind a throttle
QUIET_SOURCE = "aubridge,gc-quiet"  # an aubridge device with no player: no frames
LOG_NAME = "baresip.log"
_STATUS = re.compile(r"^\s*(\d{3})\b")


class Terminated(Exception):
    """SIGTERM: the harness stops us; still quit baresip and report."""


def new_result(role: str) -> dict[str, Any]:
    return {
        "event": "result",
        "role": role,
        "outcome": "error",
        "error": None,
        "registered": False,
        "register_ms": None,
        "setup_ok": False,
        "final_status": None,
        "pdd_ms": None,
        "setup_ms": None,
        "media_s": 0.0,
        "close_reason": None,
        "rtcp": None,
        "rtcp_log": [],
        "sending_s": None,
        "summary": None,
        "table": None,
        "log": None,
    }


def add_error(result: dict[str, Any], text: str) -> None:
    result["error"] = f"{result['error']}; {text}" if result["error"] else text


def failure_outcome(reason: str) -> tuple[str, int | None]:
    """(outcome, SIP status) of a REGISTER or call that baresip reports failed with
    `reason` (a SIP status line, or an errno text such as 'Connection timed out')."""
    match = _STATUS.match(reason)
    if match:
        status = int(match[1])
        return ("sip-4xx" if status < 500 else "sip-5xx"), status
    low = reason.lower()
    if "timed out" in low or "timeout" in low:
        return "timeout", None
    if "refused" in low or "unreachable" in low:
        return "refused", None
    if "reset" in low:
        return "reset", None
    return "error", None


class Baresip:
    """The baresip process and its ctrl_tcp connection."""

    def __init__(self, config_dir: Path, ctrl_port: int) -> None:
        self.started = time.monotonic()
        self.config_dir = config_dir
        self.log_path = config_dir / LOG_NAME
        with open(self.log_path, "wb") as out, open(config_dir / "baresip.err", "wb") as err:
            self.proc = subprocess.Popen(
                ["baresip", "-f", str(config_dir)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        try:
            self.ctrl = CtrlClient.connect(ctrl_port, START_TIMEOUT_S, self.running)
        except CtrlError as exc:
            self.proc.kill()
            self.proc.wait()
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise CtrlError(
                f"{exc} (baresip exit {self.proc.returncode}: {' | '.join(tail)})"
            ) from None
        self.refused: list[str] = []  # commands baresip answered with ok=false
        self.rtcp_log: list[dict[str, Any]] = []
        self.events: list[list[Any]] = []  # [ms since start, type, param]: the evidence
        self.established: float | None = None

    def running(self) -> bool:
        return self.proc.poll() is None

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        """The next event. Responses are not returned (a refusal is recorded: a `dial`
        refused shows in the timeout's error); CALL_RTCP events are recorded on the way."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.ctrl.next_message(left)
            if msg is None:
                return None
            if msg.get("response"):
                if not msg.get("ok"):
                    self.refused.append(str(msg.get("data") or "").strip())
                continue
            self.events.append([ms_since(self.started), msg.get("type"), msg.get("param")])
            if msg.get("type") == "CALL_RTCP" and msg.get("param") == "audio":
                stats = msg.get("rtcp_stats") or {}
                if (stats.get("rx") or {}).get("sent") or (stats.get("tx") or {}).get("sent"):
                    since = time.monotonic() - (self.established or time.monotonic())
                    self.rtcp_log.append({**stats, "at_s": round(since, 3)})
            elif msg.get("type") == "CALL_ESTABLISHED":
                self.established = time.monotonic()
            return msg
        return None

    def wait_for(self, types: set[str], timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self.next_event(left)
            if event is not None and event.get("type") in types:
                return event
        return None

    def register(self, account: str, result: dict[str, Any], timeout: float) -> bool:
        t0 = time.monotonic()
        self.ctrl.send("uanew", account)
        event = self.wait_for({"REGISTER_OK", "REGISTER_FAIL"}, timeout)
        if event is None:
            result["outcome"] = "timeout"
            add_error(result, f"REGISTER: no answer within {timeout:g} s{self.refusals()}")
            return False
        if event["type"] == "REGISTER_FAIL":
            reason = str(event.get("param") or "")
            result["outcome"], result["final_status"] = failure_outcome(reason)
            add_error(result, f"REGISTER: {reason}")
            return False
        result.update(registered=True, register_ms=ms_since(t0))
        return True

    def refusals(self) -> str:
        return f" (baresip refused: {'; '.join(self.refused)})" if self.refused else ""

    def stop_sending(self, result: dict[str, Any]) -> None:
        """No more RTP from here (see the module docstring: a drained end)."""
        self.ctrl.send("ausrc", QUIET_SOURCE)
        if self.established is not None:
            result["sending_s"] = round(time.monotonic() - self.established, 3)

    def quit(self) -> None:
        """Quit; baresip prints its call reports on the way out. `quit` waits for the
        un-REGISTER, which a censor may drop: then SIGTERM, and a second SIGTERM, which
        makes baresip exit at once (flushing its output); SIGKILL as the last resort."""
        with contextlib.suppress(OSError):
            self.ctrl.send("quit")
        for step in (self.proc.terminate, self.proc.terminate, self.proc.kill):
            try:
                self.proc.wait(QUIT_TIMEOUT_S)
                break
            except subprocess.TimeoutExpired:
                step()
        self.proc.wait()
        self.ctrl.close()

    def report_into(self, result: dict[str, Any]) -> None:
        text = self.log_path.read_text(errors="replace")
        result.update(
            summary=parse_summary(text),
            table=parse_table(text),
            rtcp=self.rtcp_log[-1] if self.rtcp_log else None,
            rtcp_log=self.rtcp_log,
            events=self.events,
            refused=self.refused,
            log=str(self.log_path),
        )


def _media_outcome(result: dict[str, Any]) -> None:
    table = result.get("table") or {}
    received = (table.get("rx") or {}).get("packets", 0)
    if received:
        result["outcome"] = "ok"
    else:
        result["outcome"] = "no-media"
        add_error(result, "no RTP received from the peer")


def run_caller(args: argparse.Namespace, bs: Baresip, result: dict[str, Any]) -> None:
    if not bs.register(args.account, result, args.register_timeout):
        return
    dial_at = time.monotonic()
    bs.ctrl.send("dial", args.target)
    deadline = dial_at + args.setup_timeout
    while True:
        event = bs.wait_for(
            {"CALL_RINGING", "CALL_PROGRESS", "CALL_ESTABLISHED", "CALL_CLOSED"},
            deadline - time.monotonic(),
        )
        if event is None:
            result["outcome"] = "timeout"
            add_error(result, f"INVITE: no answer within {args.setup_timeout:g} s{bs.refusals()}")
            bs.ctrl.send("hangup")
            bs.wait_for({"CALL_CLOSED"}, HANGUP_TIMEOUT_S)
            return
        kind = event["type"]
        if kind in ("CALL_RINGING", "CALL_PROGRESS") and result["pdd_ms"] is None:
            result["pdd_ms"] = ms_since(dial_at)
        elif kind == "CALL_CLOSED":
            reason = str(event.get("param") or "")
            result["close_reason"] = reason
            result["outcome"], result["final_status"] = failure_outcome(reason)
            add_error(result, f"INVITE: {reason}")
            return
        elif kind == "CALL_ESTABLISHED":
            break
    established = time.monotonic()
    result.update(setup_ok=True, final_status=200, setup_ms=ms_since(dial_at))
    closed = bs.wait_for({"CALL_CLOSED"}, args.duration)
    result["media_s"] = round(time.monotonic() - established, 3)
    if closed is None:
        bs.stop_sending(result)
        closed = bs.wait_for({"CALL_CLOSED"}, DRAIN_S)
    if closed is None:
        bs.ctrl.send("hangup")
        closed = bs.wait_for({"CALL_CLOSED"}, HANGUP_TIMEOUT_S)
        if closed is None:
            add_error(result, f"hangup: no CALL_CLOSED within {HANGUP_TIMEOUT_S:g} s")
    else:
        add_error(result, f"the callee ended the call early: {closed.get('param')}")
    if closed is not None:
        result["close_reason"] = closed.get("param")
    result["outcome"] = "media"  # decided from the report once baresip has quit


def run_callee(args: argparse.Namespace, bs: Baresip, result: dict[str, Any]) -> None:
    if not bs.register(args.account, result, args.register_timeout):
        return
    emit({"event": "registered", "register_ms": result["register_ms"]})
    deadline = time.monotonic() + args.max_wait
    incoming_at: float | None = None
    established = time.monotonic()
    stop_at: float | None = None  # when to stop sending
    while True:
        wake = deadline if stop_at is None else min(stop_at, deadline)
        event = bs.wait_for(
            {"CALL_INCOMING", "CALL_ESTABLISHED", "CALL_CLOSED"}, wake - time.monotonic()
        )
        if event is None and stop_at is not None and time.monotonic() < deadline:
            bs.stop_sending(result)
            stop_at = None
            continue
        if event is None:
            result["outcome"] = "timeout"
            what = "no call" if incoming_at is None else "the call did not end"
            add_error(result, f"{what} within --max-wait {args.max_wait:g} s")
            return
        kind = event["type"]
        if kind == "CALL_INCOMING":
            incoming_at = time.monotonic()
        elif kind == "CALL_ESTABLISHED":
            result.update(setup_ok=True, final_status=200)
            if incoming_at is not None:
                result["setup_ms"] = ms_since(incoming_at)
            established = time.monotonic()
            stop_at = established + args.media_seconds
        elif kind == "CALL_CLOSED":
            result["close_reason"] = event.get("param")
            if result["setup_ok"]:
                result["media_s"] = round(time.monotonic() - established, 3)
                result["outcome"] = "media"
            else:
                result["outcome"], result["final_status"] = failure_outcome(
                    str(event.get("param") or "")
                )
            return


ROLES = {"caller": run_caller, "callee": run_callee}


def run(args: argparse.Namespace) -> dict[str, Any]:
    result = new_result(args.role)

    def on_term(signum: int, frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, on_term)
    bs: Baresip | None = None
    try:
        bs = Baresip(Path(args.config_dir), args.ctrl_port)
        ROLES[args.role](args, bs, result)
    except Terminated:
        add_error(result, "terminated by SIGTERM")
    except (CtrlError, OSError) as exc:
        add_error(result, f"baresip: {exc}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the report first
        if bs is not None:
            bs.quit()
            bs.report_into(result)
    if result["outcome"] == "media":
        _media_outcome(result)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="harness.apps.baresip.agent", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", required=True, help="generated baresip config dir")
    common.add_argument("--account", required=True, help="account line for `uanew`")
    common.add_argument("--ctrl-port", type=int, required=True, help="ctrl_tcp port")
    common.add_argument("--register-timeout", type=float, default=5.0)
    callee = sub.add_parser("callee", parents=[common], help="answer one call")
    callee.add_argument("--max-wait", type=float, default=30.0, help="seconds, all told")
    callee.add_argument(
        "--media-seconds", type=float, required=True, help="send for this long, then stop"
    )
    caller = sub.add_parser("caller", parents=[common], help="place one call")
    caller.add_argument("--target", required=True, help="SIP URI to dial")
    caller.add_argument("--duration", type=float, required=True, help="seconds of media")
    caller.add_argument("--setup-timeout", type=float, default=8.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emit(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
