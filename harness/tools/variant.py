"""Tool variants: a scenario's tool entry with settings, `{name: psiphon-like-tls, as:
tls-cdn, sni: cdn.example.test}`. The same tool may appear several times with different
options or builds; each entry is a column of its own, labelled by its `as:` name.

A plain name (`shadowsocks`) is the tool with its defaults, labelled by its name. Entries
are validated here (unknown options and bad values name the entry's key and list the valid
ones); the runner builds each trial's tool instance with `build_tool(scenario, label)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
)

from harness.errors import LocatedError, did_you_mean
from harness.fields import check_label
from harness.tools.options import HOSTNAME, ToolOptions, option_key
from harness.tools.own_build import OwnBuildError, absolute, replacements
from harness.yaml_source import literal_choices, range_message

if TYPE_CHECKING:
    from harness.scenario import Scenario
    from harness.tools.base import Tool

# Keys of an entry that are not the tool's options.
ENTRY_KEYS = ("name", "as", "binary")
# Validation context of a scenario read from the user's file: own builds must exist now
# (a saved scenario.json is read later, maybe where the build no longer is).
CHECK_FILES = {"check_files": True}


class ToolEntry(BaseModel):
    """One tool column: the tool (`name`, `X+tun` allowed), its label, its own build and
    the options given (by their written names, validated)."""

    model_config = ConfigDict(frozen=True)

    name: str
    label: str
    binary: str | None = None
    options: dict[str, Any] = {}

    def written(self) -> dict[str, Any]:
        """The scenario form, so that scenario.json reads back as the same entry."""
        out: dict[str, Any] = {"name": self.name}
        if self.label != self.name:
            out["as"] = self.label
        if self.binary:
            out["binary"] = self.binary
        return {**out, **self.options}

    def full_options(self) -> dict[str, Any]:
        """Every option, defaults included: what the tool really runs with."""
        return options_model(self.name).model_validate(self.options).written()


def tool_class(name: str) -> Any:
    """The registered class of a scenario tool name (`X+tun` -> X's class)."""
    from harness import registry
    from harness.tools.tun_mode import split_name

    return registry.load(registry.TOOLS, split_name(name)[0])


def options_model(name: str) -> type[ToolOptions]:
    return tool_class(name).Options  # type: ignore[no-any-return]


def _known_name(name: Any) -> str:
    """A registered tool name (or `X+tun` of a socks5 tool X), else LocatedError at name."""
    from harness import registry
    from harness.tools.manifest_tool import check_manifests
    from harness.tools.tun_mode import check_tun_name, split_name

    if not isinstance(name, str):
        raise LocatedError(("name",), f"a tool name is text, not {name!r}")
    try:
        base, tun = split_name(name)
        if tun:
            check_tun_name(name, registry.TOOLS)
        elif name not in registry.TOOLS:
            raise ValueError(
                f"unknown tool {name!r}{did_you_mean(name, registry.TOOLS)}; "
                f"valid tools: {', '.join(sorted(registry.TOOLS))}"
            )
        check_manifests([base], registry.TOOLS)
    except ValueError as exc:
        raise LocatedError(("name",), str(exc)) from None
    return name


def parse_entry(data: Any, check_files: bool = False) -> str | ToolEntry:
    """A scenario's tool item: a name, or a mapping with `name`, `as`, `binary` and options."""
    if isinstance(data, ToolEntry):
        return data
    if isinstance(data, str):
        return check_label(data, "tool name")
    if not isinstance(data, dict):
        raise ValueError(
            f"a tool is a name (shadowsocks) or a mapping with `name:` and options, not {data!r}"
        )
    if "name" not in data:
        raise ValueError("a tool entry needs `name:` (the tool), e.g. {name: obfs4, iat-mode: 1}")
    name = _known_name(data["name"])
    label = data.get("as", name)
    try:
        check_label(label if isinstance(label, str) else repr(label), "`as:` name")
    except ValueError as exc:
        raise LocatedError(("as",), str(exc)) from None
    binary = _binary(name, data.get("binary"), check_files)
    options = {k: v for k, v in data.items() if k not in ENTRY_KEYS}
    return ToolEntry(name=name, label=label, binary=binary, options=_options(name, options))


def _binary(name: str, binary: Any, check_files: bool) -> str | None:
    if binary is None:
        return None
    if not isinstance(binary, str) or not binary:
        raise LocatedError(("binary",), f"binary is the path of a program, not {binary!r}")
    path = absolute(binary)
    if check_files:
        cls = tool_class(name)
        try:
            replacements(name, cls.programs, path, cls.main_program)
        except OwnBuildError as exc:
            raise LocatedError(("binary",), f"own build of {name}: {exc}") from None
    return path


def _options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The options by their written names, checked against the tool's model."""
    model = options_model(name)
    valid = [option_key(n) for n in model.model_fields]
    written = {option_key(str(k)): (k, v) for k, v in given.items()}
    for key, (original, _value) in written.items():
        if key not in valid:
            hint = did_you_mean(key, valid)
            choices = f"valid options: {', '.join(valid)}" if valid else "it takes no options"
            raise LocatedError(
                (original,), f"unknown option {original!r} for tool {name!r}{hint}; {choices}"
            )
    values = {key: value for key, (_original, value) in written.items()}
    try:
        model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        original = written[key][0] if key in written else key
        raise LocatedError(
            (original,) if original else (), option_message(name, key, err, model)
        ) from None
    return values


def option_message(tool: str, key: str, err: dict[str, Any], model: type[ToolOptions]) -> str:
    """One clear line for a bad option value: what was given and what is valid."""

    field = model.model_fields.get(key.replace("-", "_"))
    where = f"option {key!r} of tool {tool!r}" if key else f"options of tool {tool!r}"
    if err["type"] == "literal_error":
        choices = literal_choices(err) or [
            str(a) for a in getattr(field.annotation, "__args__", ())
        ]  # type: ignore[union-attr]
        return (
            f"{where}: {err['input']!r} is not allowed{did_you_mean(err['input'], choices)}; "
            f"valid values: {', '.join(choices)}"
        )
    if err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{where}: {range_message(err, [])}"
    if err["type"] == "string_pattern_mismatch":
        pattern = err["ctx"]["pattern"]
        what = " (a DNS name: letters, digits, '.' and '-')" if pattern == HOSTNAME else ""
        return f"{where}: {err['input']!r} does not match {pattern}{what}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {err['input']!r}: {msg}" if key else f"{where}: {msg}"


def _item(value: Any, info: ValidationInfo) -> str | ToolEntry:
    return parse_entry(value, bool((info.context or {}).get("check_files")))


# A scenario's `tools:` item.
ToolItem = Annotated[
    str | ToolEntry,
    PlainValidator(_item),
    PlainSerializer(lambda item: item if isinstance(item, str) else item.written()),
]


def as_entry(item: str | ToolEntry) -> ToolEntry:
    return item if isinstance(item, ToolEntry) else ToolEntry(name=item, label=item)


def label_of(item: str | ToolEntry) -> str:
    return item if isinstance(item, str) else item.label


def name_of(item: str | ToolEntry) -> str:
    return item if isinstance(item, str) else item.name


def check_labels(items: list[str | ToolEntry]) -> None:
    """Each column needs its own label; a label may not be another tool's name."""
    from harness import registry

    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        label = label_of(item)
        if label in seen:
            raise LocatedError(
                (i,),
                f"tool label {label!r} is used twice (items {seen[label]} and {i}): give each "
                "variant of a tool its own `as:` name",
            )
        if label != name_of(item) and label in registry.TOOLS:
            raise LocatedError(
                (i, "as"), f"`as:` name {label!r} is the name of another tool; choose another"
            )
        seen[label] = i


def build_tool(scenario: Scenario, label: str) -> Tool:
    """A new instance of the tool column `label`, with its options and own build."""
    return make_tool(scenario.tool_variants()[label])


def make_tool(entry: ToolEntry) -> Tool:
    from harness.tools.tun_mode import TunMode, split_name

    cls = tool_class(entry.name)
    tool = cls(cls.Options.model_validate(entry.options), entry.binary)
    return TunMode(tool) if split_name(entry.name)[1] else tool  # type: ignore[no-any-return]


def variant_changes(saved: Scenario, given: Scenario) -> list[str]:
    """For resume: a tool column whose tool, build or options changed is another run."""
    before, now = saved.tool_variants(), given.tool_variants()
    problems = []
    for label in sorted(set(before) & set(now)):
        old, new = before[label], now[label]
        for what, a, b in (
            ("tool", old.name, new.name),
            ("binary", old.binary, new.binary),
            ("options", _options_or_given(old), _options_or_given(new)),
        ):
            if a != b:
                verb = "differ" if what == "options" else "differs"
                problems.append(f"tool {label!r}: {what} {verb}: saved run {a!r}, given {b!r}")
    return problems


def _options_or_given(entry: ToolEntry) -> dict[str, Any]:
    try:
        return entry.full_options()
    except (KeyError, ValueError):  # the tool is not registered here: compare what was given
        return dict(entry.options)


def with_binaries(scenario: Scenario, builds: dict[str, str]) -> Scenario:
    """The scenario with `--tool-binary NAME=PATH` applied: NAME is a tool (every column
    running it) or a column's label. OwnBuildError when NAME or PATH does not fit."""
    from harness.tools.tun_mode import split_name

    items = list(scenario.tools)
    for name, path in builds.items():
        hits = [
            i
            for i, item in enumerate(items)
            if name in (split_name(name_of(item))[0], name_of(item), label_of(item))
        ]
        if not hits:
            labels = [label_of(item) for item in items]
            raise OwnBuildError(
                f"--tool-binary {name}=...: the scenario has no tool {name!r}"
                f"{did_you_mean(name, labels)}; its tools: {', '.join(labels)}"
            )
        for i in hits:
            entry = as_entry(items[i])
            cls = tool_class(entry.name)
            binary = absolute(path)
            replacements(split_name(entry.name)[0], cls.programs, binary, cls.main_program)
            items[i] = entry.model_copy(update={"binary": binary})
    return scenario.model_copy(update={"tools": items})


def version_lines(scenario: Scenario, results: list[Any]) -> list[str]:
    """'LABEL: VERSION' per tool column the results name a version for, an own build's
    path beside it: which build each column measured."""
    versions: dict[str, str] = {}
    for result in results:
        if getattr(result, "tool_version", None):
            versions[result.tool] = result.tool_version
    lines = []
    for label, entry in scenario.tool_variants().items():
        if label in versions:
            build = f" (own build {entry.binary})" if entry.binary else ""
            lines.append(f"{label}: {versions[label]}{build}")
    return lines
