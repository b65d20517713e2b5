"""One case's testbed: a fresh netns topology, a supervisor for its programs, the censor, and
helpers that run the case's client and servers inside it. Torn down whatever happens."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import censor_sims.techniques  # noqa: F401  (registers the built-in techniques)
from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.profiles import load_profile
from censor_sims.technique import Technique
from harness.topology.addressing import AddressPool
from harness.topology.netns import NetnsTopology
from harness.topology.process import Supervisor

PY = sys.executable


def profile_technique(profile: str, label: str, **override: Any) -> Technique:
    """The technique named `label` of a shipped profile, with `override` applied (a case
    says which parameters it changes and why)."""
    for spec in load_profile(profile)["techniques"]:
        if spec.get("name") == label:
            spec = {**spec, **override}
            return Technique.registry[spec["type"]].model_validate(spec)
    raise KeyError(f"profile {profile} has no technique {label!r}")


class Lab:
    """`with Lab(workdir) as lab:` a topology up, programs stopped and namespaces gone after."""

    _serial = 0

    def __init__(self, workdir: Path | None = None) -> None:
        Lab._serial += 1
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="gc-reproduce-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        run_id = f"r{os.getpid() % 100000}x{Lab._serial}"
        self.topology = NetnsTopology(run_id, 0, AddressPool().acquire(), self.workdir)
        self.supervisor = Supervisor(self.workdir / "logs")
        self.log: EventLog | None = None

    def __enter__(self) -> Lab:
        self.topology.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.supervisor.stop_all()
        finally:
            self.topology.__exit__(*exc)

    def addr(self, role: str) -> str:
        return self.topology.addr(role)

    def censor(self, *techniques: Technique) -> EventLog:
        self.log = EventLog(self.workdir / "censor.jsonl")
        Censor(self.topology["censor"], list(techniques), self.topology.addresses.as_dict(),
               self.log, self.supervisor, self.workdir).start()  # fmt: skip
        return self.log

    def events(self, action: str | None = None) -> list[dict[str, Any]]:
        assert self.log is not None
        return [e for e in self.log.read() if action is None or e["action"] == action]

    def echo(self, role: str, ports: str) -> None:
        proc = self.supervisor.start(self.topology[role], f"echo-{ports[:20]}",
                                     [PY, "-m", "harness.reproduce.servers", "echo", "--host",
                                      self.addr(role), "--ports", ports])  # fmt: skip
        proc.wait_for_event("ready", 15)

    def tls_server(self, role: str, names: list[str], port: int = 443) -> None:
        from harness.pki import make_ca

        ca = make_ca(self.workdir / "pki")
        cert, key = ca.issue(role, names, [self.addr(role)])
        proc = self.supervisor.start(self.topology[role], f"tls{port}",
                                     [PY, "-m", "harness.reproduce.servers", "tls", "--host",
                                      self.addr(role), "--port", str(port), "--cert", str(cert),
                                      "--key", str(key)])  # fmt: skip
        proc.wait_for_event("ready", 10)

    def conns(self, jobs: list[dict[str, Any]], limit: int = 32, timeout: float = 600) -> list:
        """Run a connection schedule in the client (see harness.reproduce.client)."""
        out = self.topology["client"].run([PY, "-m", "harness.reproduce.client", "conns",
                                           "--limit", str(limit)], input=json.dumps(jobs),
                                          timeout=timeout)  # fmt: skip
        return json.loads(out.stdout)

    def tls(self, sni: str, mode: str = "plain", size: int = 50_000, upload: bool = False,
            role: str = "front") -> dict[str, Any]:  # fmt: skip
        argv = [PY, "-m", "harness.reproduce.client", "tls", self.addr(role), "443", sni,
                "--mode", mode, "--size", str(size)] + (["--upload"] if upload else [])  # fmt: skip
        return json.loads(self.topology["client"].run(argv, timeout=120).stdout)

    def tls_many(self, runs: list[dict[str, Any]], role: str = "front") -> list[dict[str, Any]]:
        """Several `tls` transfers at once (each flow is throttled on its own)."""
        import subprocess

        procs = []
        for r in runs:
            argv = [PY, "-m", "harness.reproduce.client", "tls", self.addr(role), "443", r["sni"],
                    "--mode", r.get("mode", "plain"), "--size", str(r["size"])]  # fmt: skip
            if r.get("upload"):
                argv.append("--upload")
            procs.append(subprocess.Popen(self.topology["client"].wrap(argv),
                                          stdout=subprocess.PIPE, text=True))  # fmt: skip
        return [json.loads(p.communicate(timeout=180)[0]) for p in procs]


def blocked(result: dict[str, Any]) -> bool:
    return result["outcome"] != "ok"
