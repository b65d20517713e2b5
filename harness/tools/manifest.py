"""Tool manifests: a circumvention tool described in YAML instead of Python.

A tool developer writes `tool.yaml` (in `harness/tools/<name>/`, or any directory given by
`--tools-dir` / GATECRASH_TOOLS_DIR): which programs to start on `proxy` and on `client`,
their config templates, when each is ready, what the server hands to the client, and what
the client exposes. This module is the schema, the loader (errors as FILE:LINE:COL with the
valid choices); harness/manifests.py finds manifests by name and harness.tools.manifest_tool
runs one.

Template variables are `{name}` in any string: `{proxy_addr}`, `{port.server}`,
`{secret.password}`, `{file.server.json}`, `{export.cert}`... Only `{` + a dotted name + `}`
is a variable, so JSON config templates keep their own braces untouched.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.errors import did_you_mean, read_text
from harness.fields import LABEL_MAX, FileName, Port, check_port
from harness.manifests import ManifestError
from harness.tools.options import OptionType, option_field
from harness.topology.addressing import ALL_ROLES
from harness.yaml_source import literal_choices, load_yaml, mark_for, range_message, walk

VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
# Fixed variables, besides {ROLE_addr} / {ROLE_name} of every host role.
FIXED_VARIABLES = {
    "dir": "the tool's directory in the trial dir (config files, state, logs of its own)",
    "python": "the Python interpreter running gatecrash (for helper agents)",
    "ca_cert": "the run CA's certificate (PEM): the trust anchor for TLS clients",
    "ca_key": "the run CA's private key (PEM)",
    "tls_cert": "a certificate for the proxy host issued by the run CA (PEM)",
    "tls_key": "the key of tls_cert (PEM)",
    "tls_name": "the DNS name in tls_cert (proxy.gatecrash.test): SNI, Host",
}
ROLE_VARIABLES = {f"{r}_addr" for r in ALL_ROLES} | {f"{r}_name" for r in ALL_ROLES}
# Exports that the Tor PT / SIP003 conventions produce without an `export:` entry.
PT_SERVER_EXPORTS = ("pt_args", "pt_socks_username")
PT_CLIENT_EXPORTS = ("pt_socks",)

Udp = Literal["native", "udpgw", "none"]
Exposes = Literal["socks5", "http-connect", "tun"]
SecretKind = Literal["hex", "uuid"]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=LABEL_MAX)]
# An option's name as a scenario writes it (`iat-mode`) and a template uses it ({option.X}).
OptionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=LABEL_MAX)]


def check_host_port(value: str) -> str:
    """HOST:PORT where the port is a literal number must have a port in range; a port
    given as a `{variable}` is checked where the variable is defined."""
    host, sep, port = value.rpartition(":")
    if sep and host and port.isdigit():
        check_port(int(port))
    elif not VARIABLE.search(value):
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


HostPort = Annotated[str, AfterValidator(check_host_port)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ready(_Strict):
    """When a process is ready: all the given conditions hold. The tool as a whole is ready
    only after the end-to-end probe through the tunnel succeeds (always run)."""

    line: str | None = Field(default=None, description="regex on the process' stdout/stderr")
    port: int | str | None = Field(
        default=None, description="a TCP port that listens in the process' host"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("port")
    @classmethod
    def _literal_port_in_range(cls, port: int | str | None) -> int | str | None:
        """A literal port (1080 or "1080") must be in range; a {variable} is checked where
        it is defined."""
        if isinstance(port, int) or (isinstance(port, str) and port.strip().isdigit()):
            check_port(int(port))
        elif isinstance(port, str) and not VARIABLE.search(port):
            raise ValueError(f"port {port!r} is neither a number nor a {{variable}}")
        return port


class TorPtServer(_Strict):
    """Tor pluggable transport v1, managed server: TOR_PT_* environment, `SMETHODS DONE`."""

    transport: str
    bindaddr: HostPort = Field(description="IP:PORT the transport listens on")
    orport: HostPort = Field(description="IP:PORT every connection is forwarded to")
    options: str = Field(default="", description="TOR_PT_SERVER_TRANSPORT_OPTIONS")


class TorPtClient(_Strict):
    """Tor pluggable transport v1, managed client: `CMETHOD <t> socks5 ADDR`, `CMETHODS DONE`."""

    transport: str


class Sip003(_Strict):
    """A shadowsocks SIP003 plugin run directly: SS_REMOTE_*, SS_LOCAL_*, SS_PLUGIN_OPTIONS."""

    remote: HostPort = Field(description="SS_REMOTE_HOST:SS_REMOTE_PORT")
    local: HostPort = Field(description="SS_LOCAL_HOST:SS_LOCAL_PORT")
    options: str = Field(default="", description="SS_PLUGIN_OPTIONS")


class Process(_Strict):
    name: Name
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    stdin: Literal["closed", "keep"] = "closed"
    ready: Ready = Field(default_factory=Ready)
    export: dict[str, str] = Field(
        default_factory=dict, description="name -> regex with one group, read from its output"
    )
    tor_pt_server: TorPtServer | None = None
    tor_pt_client: TorPtClient | None = None
    sip003: Sip003 | None = None

    @model_validator(mode="after")
    def _one_convention(self) -> Process:
        used = [k for k in ("tor_pt_server", "tor_pt_client", "sip003") if getattr(self, k)]
        if len(used) > 1:
            raise ValueError(f"a process follows one convention, not {' and '.join(used)}")
        return self

    @field_validator("export")
    @classmethod
    def _one_group(cls, export: dict[str, str]) -> dict[str, str]:
        for key, pattern in export.items():
            try:
                groups = re.compile(pattern).groups
            except re.error as exc:
                raise ValueError(f"export {key!r}: not a regex: {exc}") from None
            if groups != 1:
                raise ValueError(f"export {key!r}: the regex needs exactly one group ( )")
        return export

    def exports(self) -> list[str]:
        names = list(self.export)
        if self.tor_pt_server:
            names += PT_SERVER_EXPORTS
        if self.tor_pt_client:
            names += PT_CLIENT_EXPORTS
        return names


class ManifestOption(_Strict):
    """A setting a scenario may give the tool (`{name: TOOL, NAME: VALUE}`), used in
    templates as `{option.NAME}` (booleans as true/false)."""

    type: OptionType
    default: Any = Field(description="the value when a scenario gives none (required)")
    description: str = Field(min_length=1, description="shown by `tools list --options`")
    choices: list[Any] | None = Field(default=None, description="the only values allowed")
    min: float | None = Field(default=None, description="smallest value (int, float)")
    max: float | None = Field(default=None, description="largest value (int, float)")
    pattern: str | None = Field(
        default=None,
        description="regex a str value must match (default: letters, digits and ._~:/,;=+@-)",
    )

    @model_validator(mode="after")
    def _default_is_valid(self) -> ManifestOption:
        """The default and every choice must themselves be values of the option."""
        from pydantic import TypeAdapter

        annotation, field = option_field(
            self.type, None, self.description, None, self.min, self.max, self.pattern
        )
        check = TypeAdapter(Annotated[annotation, field])
        for what, value in [("default", self.default)] + [
            ("choice", c) for c in self.choices or []
        ]:
            try:
                check.validate_python(value)
            except ValidationError as exc:
                msg = exc.errors()[0]["msg"]
                raise ValueError(f"{what} {value!r} is not a valid {self.type}: {msg}") from None
        if self.choices and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} is not one of the choices {self.choices}")
        return self


class Capabilities(_Strict):
    tcp: bool = True
    udp: Udp = "none"


class Manifest(_Strict):
    name: Name
    description: str = ""
    protocols: list[str] = Field(min_length=1)
    binaries: dict[str, str] = Field(
        default_factory=dict, description="program -> Debian package that provides it"
    )
    version: list[str] | None = Field(
        default=None, description="argv whose first output line is the version"
    )
    exposes: Exposes = "socks5"
    endpoint: HostPort = Field(description="host:port of what the client exposes, in `client`")
    capabilities: Capabilities = Field(default_factory=Capabilities)
    notes: str = ""
    ports: dict[str, Port] = Field(default_factory=dict)
    options: dict[OptionName, ManifestOption] = Field(
        default_factory=dict, description="settings a scenario may give, used as {option.NAME}"
    )
    tls_name: str | None = Field(
        default=None,
        description="the name in {tls_cert} and the value of {tls_name} (default the proxy's "
        "name); may use {option.NAME}, e.g. an `sni` option",
    )
    secrets: dict[str, SecretKind] = Field(default_factory=dict)
    files: dict[FileName, str] = Field(
        default_factory=dict, description="file name in the tool's directory -> template text"
    )
    server: list[Process] = Field(min_length=1)
    client: list[Process] = Field(min_length=1)
    probe_timeout_s: float = Field(default=5.0, gt=0, le=120)
    variables: list[str] = Field(
        default_factory=list, description="names the `python:` class's prepare() sets"
    )
    python: str | None = Field(
        default=None,
        description="'module:Class' or 'file.py:Class' (next to the manifest): a ManifestTool "
        "subclass for what the manifest cannot say",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.exposes != "socks5" and self.python is None:
            raise ValueError(
                f"exposes {self.exposes!r}: the built-in probe speaks SOCKS5; give a `python:` "
                "class whose endpoint() handles it"
            )
        if self.variables and self.python is None:
            raise ValueError("variables are set by a `python:` class's prepare(); give one")
        if self.capabilities.udp != "none" and self.exposes == "http-connect":
            raise ValueError("http-connect carries no UDP: capabilities.udp must be 'none'")
        for side in (self.server, self.client):
            names = [p.name for p in side]
            if dup := sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"process names on one side must differ: {', '.join(dup)}")
        return self


# --- variables ------------------------------------------------------------------------


def static_variables(manifest: Manifest) -> set[str]:
    """Every variable known before anything runs (exports come later, in process order)."""
    names = set(FIXED_VARIABLES) | ROLE_VARIABLES
    names |= {f"port.{p}" for p in manifest.ports}
    names |= {f"secret.{s}" for s in manifest.secrets}
    names |= {f"file.{f}" for f in manifest.files}
    names |= {f"option.{o}" for o in manifest.options}
    return names | set(manifest.variables)


def variables_in(text: str) -> list[str]:
    return VARIABLE.findall(text)


def _strings(node: Any, loc: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(node, BaseModel):
        for key in type(node).model_fields:
            yield from _strings(getattr(node, key), (*loc, key))
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*loc, i))
    elif isinstance(node, str):
        yield loc, node


# Strings that are not templates (regexes may contain `{2}` and the like).
_NOT_TEMPLATES = {"export", "line", "description", "notes", "protocols", "binaries", "python"}


def check_variables(manifest: Manifest) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) for every `{variable}` that nothing defines at that point.
    Exports must come from a process started earlier (server processes start first)."""
    static = static_variables(manifest)
    exported: set[str] = set()
    problems: list[tuple[tuple[Any, ...], str]] = []
    all_exports = {e for p in manifest.server + manifest.client for e in p.exports()}

    def check(node: Any, loc: tuple[Any, ...], known: set[str]) -> None:
        for where, text in _strings(node, loc):
            if set(where) & _NOT_TEMPLATES:
                continue
            for var in variables_in(text):
                if var in known:
                    continue
                if var.startswith("export.") and var[7:] in all_exports:
                    msg = f"{{{var}}} is exported by a process that starts later"
                else:
                    msg = f"unknown variable {{{var}}}; valid: {_choices(known)}"
                problems.append((where, msg))

    for side in ("server", "client"):
        for i, proc in enumerate(getattr(manifest, side)):
            check(proc, (side, i), static | {f"export.{e}" for e in exported})
            exported |= set(proc.exports())
    everything = static | {f"export.{e}" for e in exported}
    check(manifest.tls_name, ("tls_name",), static)
    check(manifest.files, ("files",), everything)
    check(manifest.endpoint, ("endpoint",), everything)
    return problems


def _choices(known: set[str]) -> str:
    fixed = sorted(v for v in known if "." not in v and v not in ROLE_VARIABLES)
    dotted = sorted(v for v in known if "." in v)
    return ", ".join(fixed + dotted + ["ROLE_addr", "ROLE_name"]) + (
        f" (ROLE: {', '.join(ALL_ROLES)})"
    )


# --- loading --------------------------------------------------------------------------


def _valid_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """The keys allowed in the mapping that holds loc[-1], for 'unknown key' errors."""
    model: Any = Manifest
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            model = field.annotation if field else None
        elif get_origin(model) in (dict, list):
            model = get_args(model)[-1]
        while get_origin(model) in (Annotated, Union, types.UnionType):
            args = [a for a in get_args(model) if a is not type(None)]
            model = args[0] if args else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return None


def _message(err: dict[str, Any], loc: tuple[Any, ...]) -> str:

    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        keys = _valid_keys(loc) or []
        hint = did_you_mean(loc[-1], keys) + (f"; valid keys: {', '.join(keys)}" if keys else "")
        return f"unknown key {loc[-1]!r}{hint}"
    if err["type"] == "missing":
        return f"missing required key {loc[-1]!r}"
    if err["type"] == "literal_error":
        hint = did_you_mean(err["input"], literal_choices(err))
        return f"{err['input']!r} is not allowed{hint}; {msg.lower()}"
    if err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return range_message(err, [])
    return msg


def parse_manifest(text: str, source: str = "<manifest>") -> Manifest:

    node, data = load_yaml(text, source, ManifestError)
    if not isinstance(data, dict) or node is None:
        raise ManifestError([f"{source}:1:1: a tool manifest is a mapping (name, server, ...)"])
    marks: dict[tuple[Any, ...], tuple[int, int]] = {}
    problems: list[str] = []
    walk(node, (), marks, problems, source)
    if problems:
        raise ManifestError(problems)

    def at(loc: tuple[Any, ...], msg: str) -> str:
        line, col = mark_for(loc, marks)
        return f"{source}:{line}:{col}: {'.'.join(map(str, loc)) or '(top level)'}: {msg}"

    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        locs = [tuple(p for p in e["loc"] if p != "[key]") for e in exc.errors()]
        raise ManifestError(
            [at(loc, _message(e, loc)) for e, loc in zip(exc.errors(), locs, strict=True)]
        ) from None
    if bad := check_variables(manifest):
        raise ManifestError([at(loc, msg) for loc, msg in bad])
    return manifest


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    return parse_manifest(read_text(path, ManifestError), str(path))
