"""How every answer model (a form, a deployment's parameters, an entry of a list) is configured:
a refused value is never echoed, an unknown field is refused, a choice field is labelled, and a
text field can be narrowed to the codes a form offers when it is asked (`with_choices`).

Prefect's UI labels a field that refers to an enum by the enum's type name (`ConsentAnswer`):
each plain enum field is written inline instead, so it reads `Client Consent` like any other
field, with its description and default kept.
"""

from collections.abc import Collection, Mapping, Sequence
from copy import copy
from enum import Enum
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
import pydantic
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


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

#: A directory code: an agency, a representative, a venue.
CODE = r"^[a-z0-9][a-z0-9-]*$"


def acting() -> Any:
    """Every form's `acting_representative`: who answers, recorded in the audit log."""
    return Field(
        description="Your representative code in the agency directory (recorded in the audit log).",
        min_length=1,
        max_length=64,
        pattern=CODE,
    )


# --- choices: the codes a form offers, built when it is asked -------------------------------

M = TypeVar("M", bound=BaseModel)
#: One choice: the code the answer carries and the label a person reads (may equal the code).
Choice = tuple[str, str]
#: Field path (`add`, `contributions.agency`, `representatives.representative`) to its choices.
Choices = Mapping[str, Sequence[Choice]]


def with_choices(form: type[M], choices: Choices, *, required: Collection[str] = ()) -> type[M]:
    """`form` with each named text field (or list of texts) restricted to its choices: the JSON
    schema gets an `enum` (the UI a dropdown; a multi-select for lists), and an answer outside
    it is refused by the Prefect server before the run resumes. Descriptions stay; the text
    constraints a choice makes moot go. A field path in `required` loses its empty option.
    An empty list of choices leaves a list field that must stay empty, an optional field that
    must stay empty, or (a required text) the field as it was, for the rule to refuse."""
    if not choices:
        return form
    fields: dict[str, Any] = {}
    nested: dict[str, dict[str, Sequence[Choice]]] = {}
    for path, options in choices.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = options
    for name, original in form.model_fields.items():
        own = choices.get(name)
        inner = nested.get(name)
        if own is None and inner is None:
            continue
        field = copy(original)
        field.metadata = list(original.metadata)
        annotation = original.annotation
        if inner is not None:
            annotation = _narrow_models(
                annotation,
                inner,
                required={r.partition(".")[2] for r in required if r.startswith(f"{name}.")},
            )
        if own is not None:
            annotation, field = _narrow_texts(
                annotation, field, [code for code, _ in own], required=name in required
            )
            labels = {code: label for code, label in own if label != code}
            if labels:
                field.description = (field.description or "") + _legend(own)
        fields[name] = (annotation, field)
    return pydantic.create_model(form.__name__, __base__=form, **fields)  # type: ignore[call-overload,no-any-return]


def _legend(options: Sequence[Choice]) -> str:
    return " Choices: " + "; ".join(f"`{code}` {label}" for code, label in options) + "."


def _choice(codes: list[str]) -> Any:
    """One of `codes`; always an `enum` in the JSON schema (pydantic writes one choice as a
    `const`), so the UI shows a dropdown even when there is one choice."""
    return Annotated[Literal[tuple(codes)], WithJsonSchema({"type": "string", "enum": codes})]


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation)


def _narrow_texts(
    annotation: Any, field: FieldInfo, codes: list[str], *, required: bool
) -> tuple[Any, FieldInfo]:
    optional = _is_optional(annotation)
    base = (
        next((a for a in get_args(annotation) if a is not NoneType), None)
        if optional
        else annotation
    )
    if get_origin(base) is list:
        if not codes:
            field.metadata.append(annotated_types.MaxLen(0))
            field.description = (field.description or "") + " Nothing to choose here now."
            return annotation, field
        return list[_choice(codes)], field  # type: ignore[misc]
    # A choice needs no pattern or length: the text constraints apply to a str only.
    field.metadata = [
        m
        for m in field.metadata
        if not isinstance(m, annotated_types.MinLen | annotated_types.MaxLen)
        and getattr(m, "pattern", None) is None
    ]
    if not codes:
        if optional:
            field.default = None
            return NoneType, field
        return annotation, field
    choice = _choice(codes)
    if optional and not required:
        return choice | None, field
    if optional and field.default is None:
        field.default = PydanticUndefined
    return choice, field


def _narrow_models(
    annotation: Any, choices: dict[str, Sequence[Choice]], *, required: Collection[str]
) -> Any:
    """list[Entry] or Entry (or optional) with Entry's own fields narrowed."""
    if _is_optional(annotation):
        inner = next(a for a in get_args(annotation) if a is not NoneType)
        return _narrow_models(inner, choices, required=required) | None
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return list[_narrow_models(item, choices, required=required)]  # type: ignore[misc]
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel), annotation
    return with_choices(annotation, choices, required=required)
