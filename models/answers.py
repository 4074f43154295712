"""How every answer model (a form, a deployment's parameters, an entry of a list) is configured:
a refused value is never echoed, an unknown field is refused, and a choice field is labelled.

Prefect's UI labels a field that refers to an enum by the enum's type name (`ConsentAnswer`):
each plain enum field is written inline instead, so it reads `Client Consent` like any other
field, with its description and default kept.
"""

from enum import Enum
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict


def _enum_of(annotation: Any) -> tuple[type[Enum] | None, bool]:
    """The enum a field holds, and whether it may also be None."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation, False
    members = [a for a in get_args(annotation) if a is not NoneType]
    if (
        get_origin(annotation) in (Union, UnionType)
        and len(members) == 1
        and isinstance(members[0], type)
        and issubclass(members[0], Enum)
    ):
        return members[0], True
    return None, False


def _inline_enums(schema: dict[str, Any], model: type[Any]) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        kind, optional = _enum_of(field.annotation)
        key = field.alias or name
        spec = properties.get(key)
        if kind is None or spec is None or "enum" in spec:
            continue  # not an enum, or already inline (narrowed to the choices offered)
        title = field.title or name.replace("_", " ").title()
        values = {"type": "string", "enum": [str(member.value) for member in kind]}
        inline: dict[str, Any] = {"title": title}
        if optional:
            inline["anyOf"] = [{**values, "title": title}, {"type": "null"}]
        else:
            inline.update(values)
        for extra in ("description", "default"):
            if extra in spec:
                inline[extra] = spec[extra]
        properties[key] = inline


ANSWER_CONFIG = ConfigDict(
    hide_input_in_errors=True, extra="forbid", json_schema_extra=_inline_enums
)
