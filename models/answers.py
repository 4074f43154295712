"""How every answer model (a form, a deployment's parameters, an entry of a list) is configured:
a refused value is never echoed, an unknown field is refused, and a choice field is labelled.

Prefect's UI labels a field that refers to an enum by the enum's type name (`ConsentAnswer`):
each plain enum field is written inline instead, so it reads `Client Consent` like any other
field, with its description and default kept.
"""

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict


def _inline_enums(schema: dict[str, Any], model: type[Any]) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        kind = field.annotation
        spec = properties.get(field.alias or name)
        if not (isinstance(kind, type) and issubclass(kind, Enum)) or spec is None:
            continue
        if "$ref" not in spec and "allOf" not in spec:
            continue  # already inline (e.g. narrowed to the choices offered)
        inline = {
            "title": field.title or name.replace("_", " ").title(),
            "type": "string",
            "enum": [str(member.value) for member in kind],
        }
        for key in ("description", "default"):
            if key in spec:
                inline[key] = spec[key]
        properties[field.alias or name] = inline


ANSWER_CONFIG = ConfigDict(
    hide_input_in_errors=True, extra="forbid", json_schema_extra=_inline_enums
)
