"""Hostile answers to caseconf's forms, built from the stored form schemas, and how to judge them.

An answer goes where a coordinator's answer goes: first the Prefect server validates it against
the form's JSON schema (`prefect.utilities.schema_tools.validate`, as the server does on
resume), then the flow reads it into the form's model (pydantic), then a rule applies it. At each
stage it is accepted or refused; a refusal must name the field, and a refusal caseconf writes
(into a form's description, a log or a state) must not repeat what was typed.

hypothesis-jsonschema 0.23 draws objects through a Hypothesis internal that Hypothesis 6.17x
removed (`many.more()`), so objects and arrays are composed here; every leaf (a string with its
pattern or format, an enum, a number) is drawn by `hypothesis_jsonschema.from_schema`.
"""

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from prefect.utilities.schema_tools.validation import ValidationError as SchemaRefusal
from prefect.utilities.schema_tools.validation import validate as server_validates

from flows.steps import _validation_reason
from models.errors import Refusal

SNAPSHOT = Path(__file__).parent / "snapshots" / "forms.json"

#: Hand-picked strings that have broken systems before.
HOSTILE: tuple[str, ...] = (
    "",
    " ",
    "x" * 5000,
    "A" * 70,
    "a\x00b",
    "\x00",
    "line\r\nInjected-Header: yes",
    "\x1b[31mred\x1b[0m",
    "\u202eevil\u202c",  # right-to-left override
    "\u200f\u05e9\u05dc\u05d5\u05dd\u200e",  # right-to-left mark, Hebrew
    "**bold** _it_ [link](javascript:alert(1)) # heading",
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    '\'; DROP TABLE "case"; --',
    "Robert'); DELETE FROM agency; --",
    "1 OR 1=1",
    "{{ 7*7 }} {% raw %}",
    "${jndi:ldap://example.invalid/a}",
    "../../etc/passwd",
    "Mustermann, Max, geb. 01.02.1990",
    "😀" * 40,
    "ﬃ ß İ",
    "\t\t",
    "-1",
    "9999-99-99",
    "2030-02-30",
    "2030-01-01T25:61:00",
    "Europe/Atlantis",
    "dsn,jva-wien",
)
WRONG_TYPES: tuple[Any, ...] = (None, 0, -1, 2**63, 1.5, True, [], {}, ["x"], {"a": 1})


def load_schemas() -> dict[str, dict[str, Any]]:
    """The stored schemas, by form name ("Referral (parameters)" -> "Referral")."""
    stored = json.loads(SNAPSHOT.read_text())
    return {name.split(" (")[0]: schema for name, schema in stored.items()}


def inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local $ref replaced by what it points to."""
    root = copy.deepcopy(schema)
    definitions = {**root.get("definitions", {}), **root.get("$defs", {})}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = definitions[node["$ref"].rsplit("/", 1)[-1]]
                merged = {**walk(target), **{k: v for k, v in node.items() if k != "$ref"}}
                return walk(merged)
            return {k: walk(v) for k, v in node.items() if k not in ("definitions", "$defs")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return dict(walk(root))


_LEAF_KEYS = ("description", "title", "default", "examples")


def valid(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts (inlined schema)."""
    if "anyOf" in schema:
        return st.one_of([valid(option) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: valid(properties[name]) for name in properties if name in required},
            optional={name: valid(properties[name]) for name in properties if name not in required},
        )
    if kind == "array":
        items = schema.get("items", {})
        return st.lists(
            valid(items) if items else st.text(max_size=20),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 4), 4),
        )
    leaf = {k: v for k, v in schema.items() if k not in _LEAF_KEYS}
    return from_schema(leaf or {"type": "null"})


def _string_paths(schema: dict[str, Any], value: Any, path: tuple[Any, ...] = ()) -> list:
    """Paths of every field in `value` (nested too), with its schema."""
    found: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, sub in value.items():
            spec = properties.get(name, {})
            spec = next((o for o in spec.get("anyOf", []) if o.get("type") != "null"), spec)
            found.append(((*path, name), spec))
            found += _string_paths(spec, sub, (*path, name))
    elif isinstance(value, list):
        items = schema.get("items", {})
        items = next((o for o in items.get("anyOf", []) if o.get("type") != "null"), items)
        for i, sub in enumerate(value):
            found.append(((*path, i), items))
            found += _string_paths(items, sub, (*path, i))
    return found


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(value)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return out


@st.composite
def answers(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    """A valid answer, or one with a hostile string, a wrong type, a field missing or one
    too many: what a careless or hostile coordinator (or a script) could submit."""
    flat = inline(schema)
    answer = draw(valid(flat))
    how = draw(st.sampled_from(["valid", "hostile", "hostile", "wrong_type", "missing", "extra"]))
    fields = _string_paths(flat, answer)
    if how == "hostile" and fields:
        path, _ = draw(st.sampled_from(fields))
        return dict(_set(answer, path, draw(st.sampled_from(HOSTILE))))
    if how == "wrong_type" and fields:
        path, _ = draw(st.sampled_from(fields))
        return dict(_set(answer, path, draw(st.sampled_from(WRONG_TYPES))))
    if how == "missing" and answer:
        drop = draw(st.sampled_from(sorted(answer)))
        return {k: v for k, v in answer.items() if k != drop}
    if how == "extra":
        return {**answer, draw(st.sampled_from(["name", "client_name", "__proto__", "x"])): "x"}
    return dict(answer)


@dataclass(frozen=True)
class Verdict:
    """Where an answer ended: refused by the server's schema check, by the form's model, by a
    rule, or accepted; with the reason given."""

    stage: str
    reason: str | None = None
    answer: Any = None


def judge(schema: dict[str, Any], form: type[pydantic.BaseModel], payload: Any) -> Verdict:
    """The server's schema check, then the form's model, as a resumed flow meets them."""
    try:
        server_validates(payload, schema, raise_on_error=True)
    except SchemaRefusal as refused:
        return Verdict("schema", str(refused))
    try:
        answer = form.model_validate(payload)
    except pydantic.ValidationError as error:
        return Verdict("form", _validation_reason(error))
    return Verdict("accepted", answer=answer)


def refused_by_rule(refusal: Refusal) -> Verdict:
    return Verdict("rule", str(refusal))


def typed_strings(payload: Any) -> set[str]:
    """Every string typed into the answer that is long enough to be recognised elsewhere."""
    found: set[str] = set()
    if isinstance(payload, dict):
        for value in payload.values():
            found |= typed_strings(value)
    elif isinstance(payload, list):
        for value in payload:
            found |= typed_strings(value)
    elif isinstance(payload, str) and len(payload.strip()) >= 6:
        found.add(payload)
    return found


def names_a_field(verdict: Verdict, schema: dict[str, Any], payload: Any) -> bool:
    """A refusal is clear when it names a field of the form (or the extra one given)."""
    assert verdict.reason is not None
    names = set(inline(schema).get("properties", {})) | set(
        payload if isinstance(payload, dict) else ()
    )
    return any(re.search(rf"\b{re.escape(n)}\b", verdict.reason) for n in names)


def offered(schema: dict[str, Any]) -> set[str]:
    """What the form itself shows: every choice (enum and const values) and every field name.
    A refusal may name these; they are not what a person typed."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.get("enum", []):
                found.add(str(value))
            if "const" in node:
                found.add(str(node["const"]))
            found.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(inline(schema))
    return found


def leaks(verdict: Verdict, payload: Any, schema: dict[str, Any]) -> set[str]:
    """What the refusal repeats of the answer. The server's own refusal goes back only to the
    person who typed it; caseconf's refusals are stored (description, log, state) and must not
    repeat it. A choice the form offered is not typed text: a refusal may name the choice (and
    the field `not_done_reason` contains the status `not_done`)."""
    if verdict.stage not in ("form", "rule") or verdict.reason is None:
        return set()
    repeated = {typed for typed in typed_strings(payload) if typed in verdict.reason}
    return repeated - offered(schema) if repeated else repeated
