"""Runs a tool manifest: renders its templates, starts its server processes on `proxy` and
its client processes on `client` in order, waits for each one's readiness, passes exported
values on, and finally checks end to end through the tunnel (Tool.probe).

Tor PT v1 managed mode and SIP003 are built in: a process marked `tor_pt_server`,
`tor_pt_client` or `sip003` gets the convention's environment, and PT processes their
readiness (`*METHODS DONE`), their errors (`*-ERROR`) and their exports (bridge args, the
client's SOCKS address) without the manifest spelling them out.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import secrets
import sys
import uuid
from pathlib import Path
from typing import ClassVar

from harness.pki import make_ca
from harness.tools.base import Tool, ToolFailed
from harness.tools.manifest import (
    Manifest,
    ManifestError,
    Process,
    load_manifest,
    variables_in,
)
from harness.tools.options import manifest_options_model
from harness.topology.addressing import ALL_ROLES
from harness.topology.base import fqdn
from harness.topology.process import ManagedProcess, ProcessFailed
from harness.trial import Endpoint, TrialContext

PT_ERROR = re.compile(r"^(?:[SC]METHOD-ERROR|ENV-ERROR|VERSION-ERROR|PROXY-ERROR).*$", re.M)
SMETHOD = re.compile(r"^SMETHOD (\S+) (\S+)(?: ARGS:(\S+))?", re.M)
CMETHOD = re.compile(r"^CMETHOD (\S+) socks5 (\S+)", re.M)


class Renderer:
    """Substitutes `{variable}`s; values grow as processes export theirs."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __call__(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in self.values:
                raise ToolFailed(f"template variable {{{m.group(1)}}} has no value yet")
            return self.values[m.group(1)]

        return re.sub(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}", sub, text)

    def ready(self, text: str) -> bool:
        return all(v in self.values for v in variables_in(text))


def _split(addr: str) -> tuple[str, str]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), port


def convention_env(proc: Process, state_dir: Path, render: Renderer) -> dict[str, str]:
    """The environment a Tor PT v1 / SIP003 program expects (`state_dir`: the PT's own)."""
    if pt := proc.tor_pt_server:
        return {
            "TOR_PT_MANAGED_TRANSPORT_VER": "1",
            "TOR_PT_STATE_LOCATION": f"{state_dir}/",
            "TOR_PT_EXIT_ON_STDIN_CLOSE": "1",
            "TOR_PT_SERVER_TRANSPORTS": pt.transport,
            "TOR_PT_SERVER_BINDADDR": f"{pt.transport}-{render(pt.bindaddr)}",
            "TOR_PT_ORPORT": render(pt.orport),
            "TOR_PT_EXTENDED_SERVER_PORT": "",
            **({"TOR_PT_SERVER_TRANSPORT_OPTIONS": render(pt.options)} if pt.options else {}),
        }
    if pt := proc.tor_pt_client:
        return {
            "TOR_PT_MANAGED_TRANSPORT_VER": "1",
            "TOR_PT_STATE_LOCATION": f"{state_dir}/",
            "TOR_PT_EXIT_ON_STDIN_CLOSE": "1",
            "TOR_PT_CLIENT_TRANSPORTS": pt.transport,
        }
    if sip := proc.sip003:
        remote_host, remote_port = _split(render(sip.remote))
        local_host, local_port = _split(render(sip.local))
        return {
            "SS_REMOTE_HOST": remote_host,
            "SS_REMOTE_PORT": remote_port,
            "SS_LOCAL_HOST": local_host,
            "SS_LOCAL_PORT": local_port,
            "SS_PLUGIN_OPTIONS": render(sip.options),
        }
    return {}


def convention_exports(proc: Process, output: str) -> dict[str, str]:
    """Values a PT announces: the server's bridge args (`cert=...,iat-mode=0`, and the same
    as a SOCKS username `cert=...;iat-mode=0`), the client's SOCKS address."""
    if proc.tor_pt_server:
        for m in SMETHOD.finditer(output):
            if m.group(1) == proc.tor_pt_server.transport:
                args = m.group(3) or ""
                return {"pt_args": args, "pt_socks_username": args.replace(",", ";")}
    if proc.tor_pt_client:
        for m in CMETHOD.finditer(output):
            if m.group(1) == proc.tor_pt_client.transport:
                return {"pt_socks": m.group(2)}
    return {}


def _import_class(spec: str, base_dir: Path) -> type:
    module_name, _, attr = spec.partition(":")
    if module_name.endswith(".py"):
        path = (base_dir / module_name).resolve()
        unique = f"gatecrash_tool_{path.parent.name}_{path.stem}".replace("-", "_")
        mod_spec = importlib.util.spec_from_file_location(unique, path)
        if mod_spec is None or mod_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[mod_spec.name] = module
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    return getattr(module, attr)


class ManifestTool(Tool):
    """A Tool whose behaviour comes from a manifest. Subclass it (the manifest's `python:`)
    to add what YAML cannot say: override `prepare` (extra variables) or `endpoint`."""

    name = "manifest"
    manifest: ClassVar[Manifest]
    path: ClassVar[Path]
    protocols: ClassVar[list[str]] = []
    version_command: ClassVar[list[str] | None] = None

    @classmethod
    def for_file(cls, path: str | Path) -> type[ManifestTool]:
        """A Tool class for one manifest (validated), built on the class its `python:` names,
        with the class attributes every Tool has (name, exposes, udp, binaries)."""
        path = Path(path)
        manifest = load_manifest(path)
        base: type[ManifestTool] = cls
        if manifest.python:
            try:
                base = _import_class(manifest.python, path.parent)
            except (ImportError, AttributeError, OSError, SyntaxError) as exc:
                raise ManifestError(
                    [f"{path}: python: cannot load {manifest.python!r}: {exc}"]
                ) from None
            if not (isinstance(base, type) and issubclass(base, ManifestTool)):
                raise ManifestError([f"{path}: python: {manifest.python!r} is not a ManifestTool"])
        main = manifest.version[0] if manifest.version else None
        attrs = {
            "Options": manifest_options_model(manifest.name, manifest.options),
            "programs": tuple(dict.fromkeys([*([main] if main else []), *manifest.binaries])),
            "main_program": main,
            "name": manifest.name,
            "exposes": manifest.exposes,
            "udp": manifest.capabilities.udp,
            "binaries": dict(manifest.binaries),
            "protocols": list(manifest.protocols),
            "version_command": manifest.version,
            "manifest": manifest,
            "path": path,
        }
        return type(f"{base.__name__}[{manifest.name}]", (base,), attrs)

    # --- hooks for subclasses -----------------------------------------------------------

    def prepare(self, ctx: TrialContext, values: dict[str, str]) -> None:
        """Add or change variables before anything starts (a subclass hook)."""

    def endpoint(self, ctx: TrialContext, address: str) -> Endpoint:
        """What the app gets; the SOCKS5 probe through the tunnel decides readiness."""
        self.probe(ctx, address, timeout=self.manifest.probe_timeout_s)
        return Endpoint(socks=address, udp=self.udp != "none")

    # --- running ------------------------------------------------------------------------

    def variables(self, ctx: TrialContext, tool_dir: Path) -> dict[str, str]:
        m = self.manifest
        values: dict[str, str] = {"dir": str(tool_dir), "python": ctx.python}
        for role in ALL_ROLES:
            values[f"{role}_addr"] = ctx.topology.addr(role)
            values[f"{role}_name"] = fqdn(role)
        values.update({f"port.{k}": str(v) for k, v in m.ports.items()})
        for key, kind in m.secrets.items():
            values[f"secret.{key}"] = str(uuid.uuid4()) if kind == "uuid" else secrets.token_hex(16)
        values.update({f"file.{k}": str(tool_dir / k) for k in m.files})
        values.update(self.option_values())
        values["tls_name"] = Renderer(values)(m.tls_name) if m.tls_name else fqdn("proxy")
        if self._uses({"ca_cert", "ca_key", "tls_cert", "tls_key"}):
            ca = ctx.ca if ctx.ca is not None else make_ca(tool_dir / "pki")
            cert, key = ca.issue(
                f"{m.name}-server", [values["tls_name"]], [ctx.topology.addr("proxy")], tool_dir
            )
            values.update(ca_cert=str(ca.cert_path), ca_key=str(ca.key_path))
            values.update(tls_cert=str(cert), tls_key=str(key))
        return values

    def option_values(self) -> dict[str, str]:
        """`{option.NAME}` of every option as text (booleans as JSON's true/false)."""
        return {
            f"option.{key}": (str(value).lower() if isinstance(value, bool) else str(value))
            for key, value in self.options.written().items()
        }

    def _uses(self, names: set[str]) -> bool:
        text = self.manifest.model_dump_json()
        return any(f"{{{n}}}" in text for n in names)

    def start(self, ctx: TrialContext) -> Endpoint:
        self.check_installed()
        tool_dir = ctx.dir / f"tool-{self.name}"
        tool_dir.mkdir(parents=True, exist_ok=True)
        values = self.variables(ctx, tool_dir)
        self.prepare(ctx, values)
        if missing := [v for v in self.manifest.variables if v not in values]:
            raise ToolFailed(f"{self.name}: prepare() did not set {', '.join(missing)}")
        render = Renderer(values)
        pending = dict(self.manifest.files)
        for host, procs in (("proxy", self.manifest.server), ("client", self.manifest.client)):
            for proc in procs:
                self._write_files(pending, render, tool_dir)
                values.update(self._run(ctx, host, proc, tool_dir, render))
        self._write_files(pending, render, tool_dir)
        return self.endpoint(ctx, render(self.manifest.endpoint))

    def _write_files(self, pending: dict[str, str], render: Renderer, tool_dir: Path) -> None:
        """Write every template whose variables all have values by now."""
        for name, text in list(pending.items()):
            if render.ready(text):
                path = tool_dir / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(text))
                del pending[name]

    def _run(
        self, ctx: TrialContext, host: str, proc: Process, tool_dir: Path, render: Renderer
    ) -> dict[str, str]:
        """Start one process, wait until it is ready, return what it exports."""
        for name in self.manifest.files:
            if f"{{file.{name}}}" in " ".join(proc.command) and not (tool_dir / name).exists():
                raise ToolFailed(f"{self.name}: file {name!r} needs values no process gave yet")
        env = {k: render(v) for k, v in proc.env.items()}
        env.update(convention_env(proc, tool_dir / f"{host}-{proc.name}", render))
        is_pt = proc.tor_pt_server is not None or proc.tor_pt_client is not None
        running = ctx.supervisor.start(
            ctx.topology[host],
            f"{self.name}-{proc.name}",
            self.command(proc, render),
            env=env,
            keep_stdin=proc.stdin == "keep" or is_pt,  # PT: stdin closed = exit
            cwd=tool_dir,
        )
        timeout = proc.ready.timeout_s
        if is_pt:
            done = "SMETHODS DONE" if proc.tor_pt_server else "CMETHODS DONE"
            self._wait_line(running, rf"^{done}|{PT_ERROR.pattern}", timeout)
            if err := PT_ERROR.search(self._output(running)):
                raise ToolFailed(f"{self.name}: {proc.name} on {host}: {err.group(0)}")
        if proc.ready.line:
            self._wait_line(running, proc.ready.line, timeout)
        if proc.ready.port is not None:
            port = int(render(str(proc.ready.port)))
            running.wait_until(
                lambda: ctx.topology[host].listening(port), timeout, f"TCP port {port} listening"
            )
        return self._exports(running, proc, host, timeout)

    def command(self, proc: Process, render: Renderer) -> list[str]:
        """The process's argv, its program replaced by the own build when one is given."""
        argv = [render(a) for a in proc.command]
        return [self.program(argv[0]), *argv[1:]]

    @staticmethod
    def _output(running: ManagedProcess) -> str:
        return running.stdout_text() + "\n" + running.stderr_path.read_text(errors="replace")

    def _wait_line(self, running: ManagedProcess, pattern: str, timeout: float) -> None:
        regex = re.compile(pattern, re.M)
        running.wait_until(
            lambda: regex.search(self._output(running)), timeout, f"output matching {pattern!r}"
        )

    def _exports(
        self, running: ManagedProcess, proc: Process, host: str, timeout: float
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, pattern in proc.export.items():
            regex = re.compile(pattern, re.M)
            try:
                match = running.wait_until(
                    lambda r=regex: r.search(self._output(running)), timeout, f"export {key!r}"
                )
            except ProcessFailed as exc:
                raise ToolFailed(f"{self.name}: {proc.name} on {host}: {exc}") from None
            out[f"export.{key}"] = match.group(1)
        conv = convention_exports(proc, self._output(running))
        if (proc.tor_pt_server or proc.tor_pt_client) and not conv:
            raise ToolFailed(
                f"{self.name}: {proc.name} on {host} said *METHODS DONE without a method for "
                f"its transport\n{running.tail()}"
            )
        out.update({f"export.{k}": v for k, v in conv.items()})
        return out


def check_manifests(names: list[str], table: dict[str, str]) -> list[str]:
    """Scenario validation: each manifest tool named must itself be valid, its `python:`
    class included (errors carry the manifest's own FILE:LINE:COL)."""
    for name in names:
        entry = table.get(name, "")
        if entry.startswith("manifest:"):
            try:
                ManifestTool.for_file(entry.removeprefix("manifest:"))
            except ManifestError as exc:
                raise ValueError(f"tool {name!r}: " + "; ".join(exc.problems)) from None
    return names
