"""Scenario files: the public contract. Load YAML, validate with pydantic, and report every
problem as FILE:LINE:COL with the valid choices, so a user can fix it without reading code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

import censor_sims.techniques  # noqa: F401  (registers the built-in techniques)
from censor_sims.profiles import load_profile, profile_names
from censor_sims.technique import Technique
from harness.apps.plugin import options_field
from harness.errors import InputProblems, LocatedError, did_you_mean, read_text
from harness.fields import AppName, CensorName, ScenarioName
from harness.registry import APPS, TOOLS, app_plugin, app_plugins
from harness.scoring.verdict import CellVerdict, Thresholds
from harness.tools.capabilities import check_routed
from harness.tools.manifest_tool import check_manifests
from harness.tools.tun_mode import check_tun_name, split_name
from harness.tools.variant import CHECK_FILES, ToolEntry, ToolItem, as_entry, check_labels, name_of
from harness.yaml_source import (
    BOUNDS,
    Marks,
    literal_choices,
    load_yaml,
    mark_for,
    number_text,
    range_message,
    walk,
)

# What an expectation may name: every verdict a cell can get (harness/scoring/verdict.py).
Verdict = CellVerdict
VERDICTS: tuple[str, ...] = get_args(CellVerdict)

TechniqueSpec = Annotated[
    Union[tuple(Technique.registry.values())],  # noqa: UP007  (built from the registry)
    Field(discriminator="type"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expectation(_Strict):
    censor: str
    tool: str
    app: str
    verdict: Verdict | list[Verdict] = Field(description="a verdict or a list of acceptable ones")

    @field_validator("verdict", mode="before")
    @classmethod
    def _known_verdicts(cls, verdict: Any) -> Any:
        """One clear error per unknown verdict, rather than one per member of the union."""
        for value in verdict if isinstance(verdict, list) else [verdict]:
            if isinstance(value, str) and value not in VERDICTS:
                raise ValueError(
                    f"unknown verdict {value!r}{did_you_mean(value, VERDICTS)}; "
                    f"valid verdicts: {', '.join(VERDICTS)}"
                )
        return verdict

    def accepts(self, verdict: str) -> bool:
        allowed = [self.verdict] if isinstance(self.verdict, str) else self.verdict
        return verdict in allowed


class Scenario(_Strict):
    """The fields every scenario has. Each registered app adds its option block (`sip:`,
    `signal_like:`, ...) in the model `scenario_model()` builds from the registry: parse
    and load scenarios through it (parse_scenario, load_scenario, scenario_model())."""

    name: ScenarioName
    description: str = ""
    trials: int = Field(default=5, ge=1, le=100000)
    call_seconds: float = Field(default=5.0, gt=0, le=3600)
    apps: list[AppName] = Field(min_length=1)
    tools: list[ToolItem] = Field(
        min_length=1,
        description="tool names, or {name: TOOL, as: LABEL, binary: PATH, OPTION: VALUE}",
    )
    censors: dict[CensorName, list[TechniqueSpec]] = Field(min_length=1)
    targets: dict[str, list[str]] = Field(
        default_factory=dict,
        description="censor -> the apps it aims at (every other app is its bystander); a "
        "censor named by a shipped profile aims at the profile's targets that run here",
    )
    expect: list[Expectation] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    capture: bool = False

    @field_validator("censors", mode="before")
    @classmethod
    def _profiles_by_name(cls, censors: Any) -> Any:
        """A string names a shipped profile: it stands for that profile's techniques."""
        if isinstance(censors, dict):
            return {
                name: load_profile(spec)["techniques"] if isinstance(spec, str) else spec
                for name, spec in censors.items()
            }
        return censors

    @model_validator(mode="before")
    @classmethod
    def _profile_targets(cls, data: Any) -> Any:
        """A censor named by a profile aims at the profile's targets among this scenario's
        apps, unless `targets` names its own; resolved here because the saved scenario
        keeps the profile's techniques, not its name."""
        if not isinstance(data, dict) or not isinstance(data.get("censors"), dict):
            return data
        given = data.get("targets", {})
        apps = data.get("apps") if isinstance(data.get("apps"), list) else []
        if not isinstance(given, dict):
            return data  # the field's own validation says what is wrong
        resolved = dict(given)
        for censor, spec in data["censors"].items():
            if isinstance(spec, str) and spec in profile_names() and censor not in resolved:
                aims = load_profile(spec).get("targets") or []
                resolved[censor] = [app for app in aims if app in apps]
        return {**data, "targets": resolved} if resolved != given else data

    @field_validator("apps")
    @classmethod
    def _known_apps(cls, apps: list[str]) -> list[str]:
        return _known("app", apps, APPS)

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, tools: list[str | ToolEntry]) -> list[str | ToolEntry]:
        names = [t for t in tools if isinstance(t, str)]  # entries are checked as items
        tun = {n: "" for n in names if split_name(n)[1]}  # `<tool>+tun`: tun mode (socks5)
        for name in tun:
            check_tun_name(name, TOOLS)
        check_manifests(_known("tool", names, {**TOOLS, **tun}), TOOLS)
        check_labels(tools)  # variants: one column per `as:` name
        return tools

    @field_validator("tools")
    @classmethod
    def _routed_tools_for_apps_without_proxy(
        cls, tools: list[str | ToolEntry], info: ValidationInfo
    ) -> list[str | ToolEntry]:
        """An app with no proxy setting (its plugin says so) refuses a proxy-only tool rather
        than run it direct."""
        for app in info.data.get("apps") or []:
            if app_plugin(app).needs_routed_tool:
                for tool in tools:
                    check_routed(app, name_of(tool))
        return tools

    @model_validator(mode="after")
    def _expectations_name_cells(self) -> Scenario:
        for i, exp in enumerate(self.expect):
            for what, value, choices in (
                ("censor", exp.censor, list(self.censors)),
                ("tool", exp.tool, list(self.tool_variants())),
                ("app", exp.app, self.apps),
            ):
                if value not in choices:
                    raise LocatedError(
                        ("expect", i, what),
                        f"{what} {value!r} is not in this scenario"
                        f"{did_you_mean(value, choices)}; valid: {', '.join(choices)}",
                    )
        return self

    @model_validator(mode="after")
    def _targets_name_cells(self) -> Scenario:
        """`targets:` names censors and apps of this scenario, each app once per censor."""
        censors = list(self.censors)
        for censor, apps in self.targets.items():
            if censor not in self.censors:
                raise LocatedError(
                    ("targets", censor),
                    f"censor {censor!r} is not in this scenario"
                    f"{did_you_mean(censor, censors)}; valid: {', '.join(censors)}",
                )
            for i, app in enumerate(apps):
                if app not in self.apps:
                    raise LocatedError(
                        ("targets", censor, i),
                        f"app {app!r} is not in this scenario"
                        f"{did_you_mean(app, self.apps)}; valid: {', '.join(self.apps)}",
                    )
                if app in apps[:i]:
                    raise LocatedError(("targets", censor, i), f"app {app!r} is listed twice")
        return self

    def cells(self) -> list[tuple[str, str, str]]:
        """(censor, tool, app) in file order: censors outermost, so each censor's control
        (direct) runs next to the tools it is compared with."""
        tools = list(self.tool_variants())
        return [(c, t, a) for c in self.censors for t in tools for a in self.apps]

    def options(self, app: str) -> BaseModel:
        """App `app`'s option block (its plugin's model)."""
        return getattr(self, options_field(app))

    def trial_fields(self) -> tuple[str, ...]:
        """The fields that shape what a trial measures: a resumed run must keep them."""
        return ("call_seconds", "capture", *(options_field(app) for app in APPS))

    def trial_keys(self) -> list[tuple[str, str, str, int]]:
        """Every trial as (censor, tool, app, trial), cell by cell: the order a run takes."""
        return [(*cell, n) for cell in self.cells() for n in range(self.trials)]

    def tool_variants(self) -> dict[str, ToolEntry]:
        """label -> the tool a column runs, its options and own build (harness.tools.variant);
        a plain name is its own label."""
        return {entry.label: entry for entry in map(as_entry, self.tools)}


def _known(what: str, names: list[str], table: dict[str, str]) -> list[str]:
    for name in names:
        if name not in table:
            raise ValueError(
                f"unknown {what} {name!r}{did_you_mean(name, table)}; "
                f"valid {what}s: {', '.join(sorted(table))}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"{what}s are listed twice: {names}")
    return names


class ScenarioError(InputProblems):
    """Bad scenario input; `problems` are 'FILE:LINE:COL: message' lines."""


def _strip_union_tags(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """pydantic puts the union member's tag in loc (e.g. 'port_block'); drop what the data
    does not contain so loc is a path into the YAML document."""
    out: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and i == len(loc) - 1 and part not in Technique.registry:
            out.append(part)  # a missing key
            cur = None
        # else: a union member's tag, or '[key]' (a bad mapping key: the key's own position)
    return tuple(out)


_MODELS: dict[tuple[Any, ...], type[Scenario]] = {}


def scenario_model() -> type[Scenario]:
    """Scenario with one option block per registered app, each validated by the app's own
    model, and censors made of every registered technique; rebuilt when an app or a
    technique is registered (a plug-in package, a test's toy)."""
    key = (tuple(APPS.items()), tuple(Technique.registry))
    if key not in _MODELS:
        blocks: dict[str, Any] = {
            options_field(name): (plugin.options, Field(default_factory=plugin.options))
            for name, plugin in app_plugins().items()
        }
        spec = Annotated[
            Union[tuple(Technique.registry.values())],  # noqa: UP007  (from the registry)
            Field(discriminator="type"),
        ]
        censors = (dict[CensorName, list[spec]], Scenario.model_fields["censors"])  # type: ignore[valid-type]
        _MODELS[key] = create_model("Scenario", __base__=Scenario, censors=censors, **blocks)
    return _MODELS[key]


def _model_at(path: tuple[Any, ...], data: Any) -> Any:
    """The model (or type) that validates the value at `path` of the document."""
    model: Any = scenario_model()
    cur = data
    for part in path:
        cur = cur[part] if isinstance(cur, dict | list) else None
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            model = field.annotation if field else None
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        elif get_origin(model) is list:
            model = get_args(model)[0]
        while get_origin(model) is Annotated:
            model = get_args(model)[0]
        if get_origin(model) is Union and isinstance(cur, dict):
            tag = cur.get("type")
            model = Technique.registry.get(tag)
    return model


def _valid_keys(loc: tuple[Any, ...], data: Any) -> list[str] | None:
    """The keys allowed in the mapping that holds loc[-1], for 'unknown key' errors."""
    model = _model_at(loc[:-1], data)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return None


_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _field_bounds(loc: tuple[Any, ...], data: Any) -> list[str]:
    """'at least 0', 'at most 1'... of the model field at loc (both ends, not only the one
    the value crossed), so a range error states the whole valid range."""
    model = _model_at(loc[:-1], data)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    field = model.model_fields.get(loc[-1])
    bounds = []
    for meta in field.metadata if field else []:
        for attr, words in BOUNDS.items():
            if getattr(meta, attr, None) is not None:
                bounds.append(f"{words} {number_text(getattr(meta, attr))}")
    return bounds


def _message(err: dict[str, Any], loc: tuple[Any, ...], data: Any) -> str:
    msg = err["msg"].removeprefix("Value error, ")
    types = sorted(Technique.registry)
    if err["type"] == "extra_forbidden":
        keys = _valid_keys(loc, data) or []
        hint = did_you_mean(loc[-1], keys) + (f"; valid keys: {', '.join(keys)}" if keys else "")
        return f"unknown key {loc[-1]!r}{hint}"
    if err["type"] == "missing":
        return f"missing required key {loc[-1]!r}"
    if err["type"] == "union_tag_invalid":
        tag = err["ctx"].get("tag")
        return f"unknown technique type {tag!r}{did_you_mean(tag, types)}; valid types: " + (
            ", ".join(types)
        )
    if err["type"] == "union_tag_not_found":
        return f"technique has no 'type'; valid types: {', '.join(types)}"
    if err["type"] == "literal_error":
        hint = did_you_mean(err["input"], literal_choices(err))
        return f"{err['input']!r} is not allowed{hint}; {msg.lower()}"
    if err["type"] in _RANGE_ERRORS:
        return range_message(err, _field_bounds(loc, data))
    if err["type"] == "too_long":
        return f"{err['ctx']['actual_length']} items; at most {err['ctx']['max_length']} allowed"
    if err["type"] == "too_short":
        return f"{err['ctx']['actual_length']} items; at least {err['ctx']['min_length']} needed"
    return msg


def _format_error(err: dict[str, Any], data: Any, marks: Marks, src: str) -> str:
    loc = _strip_union_tags(tuple(err["loc"]), data)
    if isinstance(located := err.get("ctx", {}).get("error"), LocatedError):
        loc = (*loc, *located.loc)
    line, col = mark_for(loc, marks)
    where = ".".join(str(p) for p in loc) or "(top level)"
    return f"{src}:{line}:{col}: {where}: {_message(err, loc, data)}"


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    problems: list[str] = []
    node, data = load_yaml(text, source, ScenarioError)
    if not isinstance(data, dict):
        raise ScenarioError([f"{source}:1:1: a scenario is a mapping with keys name, apps, ..."])
    marks: Marks = {}
    walk(node, (), marks, problems, source)
    problems += _profile_problems(data, marks, source)
    if problems:
        raise ScenarioError(problems)
    try:
        return scenario_model().model_validate(data, context=CHECK_FILES)
    except ValidationError as exc:
        found = [_format_error(e, data, marks, source) for e in exc.errors()]
        raise ScenarioError(list(dict.fromkeys(found))) from None  # union members repeat


def _profile_problems(data: dict[str, Any], marks: Marks, source: str) -> list[str]:
    """Censors named by an unknown profile, each at its own line (checked before the model,
    whose profile lookup can only point at `censors:` as a whole)."""
    censors = data.get("censors")
    if not isinstance(censors, dict):
        return []
    shipped = profile_names()
    problems = []
    for name, spec in censors.items():
        if isinstance(spec, str) and spec not in shipped:
            line, col = mark_for(("censors", name), marks)
            problems.append(
                f"{source}:{line}:{col}: censors.{name}: unknown censor profile {spec!r}"
                f"{did_you_mean(spec, shipped)}; shipped: {', '.join(shipped)}"
            )
    return problems


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(read_text(path, ScenarioError), str(path))
