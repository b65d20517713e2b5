"""Tool options: the settings a scenario may give a tool (`{name: obfs4, iat-mode: 1}`).

Each tool declares them as a pydantic model (typed, with defaults and descriptions), so a
typo or a bad value is refused before anything runs and `gatecrash tools list --options
NAME` can document them. Option names are written with hyphens (`iat-mode`); the same name
with underscores is accepted. A manifest tool declares its options in YAML; they become such
a model here (`manifest_options_model`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

# A DNS name as it goes into a ClientHello or a Host header.
HOSTNAME = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
ServerName = Annotated[str, Field(pattern=HOSTNAME, max_length=253)]
# A manifest's string option, without a pattern of its own: no quotes, backslashes, braces or
# spaces, so that it cannot break the JSON or argv it is put into.
SAFE_VALUE = r"^[A-Za-z0-9._~:/,;=+@-]*$"


def option_key(name: str) -> str:
    """The written form of an option name: `iat_mode` -> `iat-mode`."""
    return name.replace("_", "-")


class ToolOptions(BaseModel):
    """Base of every tool's options: unknown names are refused, values are checked."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=option_key, populate_by_name=True
    )

    def written(self) -> dict[str, Any]:
        """Every option by its written name, defaults included (JSON-compatible values)."""
        return self.model_dump(mode="json", by_alias=True)


class NoOptions(ToolOptions):
    """A tool without settings."""


class PaddingRange(ToolOptions):
    """The OSSH client's seed-message padding (Psiphon: 32..8192 random bytes)."""

    padding_min: int = Field(default=32, ge=0, le=8192, description="fewest padding bytes")
    padding_max: int = Field(default=8192, ge=0, le=8192, description="most padding bytes")

    @model_validator(mode="after")
    def _ordered(self) -> PaddingRange:
        if self.padding_min > self.padding_max:
            raise ValueError(
                f"padding-min ({self.padding_min}) is more than padding-max ({self.padding_max})"
            )
        return self


# --- manifest options ----------------------------------------------------------------

OptionType = Literal["str", "int", "float", "bool"]
_PYTHON_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


def option_field(
    type_: OptionType,
    default: Any,
    description: str,
    choices: list[Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: str | None = None,
) -> tuple[Any, Any]:
    """(annotation, FieldInfo) of one declared option, for create_model."""
    annotation: Any = _PYTHON_TYPES[type_]
    if choices:
        annotation = Literal[tuple(choices)]  # type: ignore[valid-type]
    extra: dict[str, Any] = {}
    if type_ in ("int", "float") and not choices:
        extra = {"ge": minimum, "le": maximum}
    if type_ == "str" and not choices:
        extra = {"pattern": pattern or SAFE_VALUE}
    if not choices:
        extra["strict"] = True  # YAML's 1 is no string, "1" no number
    return annotation, Field(default=default, description=description, **extra)


def manifest_options_model(tool: str, declared: dict[str, Any]) -> type[ToolOptions]:
    """A ToolOptions model from a manifest's `options:` (name -> ManifestOption)."""
    fields = {
        name.replace("-", "_"): option_field(
            o.type, o.default, o.description, o.choices, o.min, o.max, o.pattern
        )
        for name, o in declared.items()
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{tool}Options", __base__=ToolOptions, **fields
    )


def describe(model: type[ToolOptions]) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) of every option, for `tools list --options`."""
    rows = []
    for name, field in model.model_fields.items():
        rows.append(
            (option_key(name), _type_text(field), _default_text(field.default), _about(field))
        )
    return rows


def _type_text(field: Any) -> str:
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        return " | ".join(str(a) for a in get_args(annotation))
    text = getattr(annotation, "__name__", str(annotation))
    bounds = []
    for meta in field.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                bounds.append(f"{sign} {getattr(meta, attr)}")
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _about(field: Any) -> str:
    return field.description or ""
