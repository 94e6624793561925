"""Request body checks against the Graph v1.0 JSON Schemas, with Graph's error wording.

The schemas (``data/schema/``, see ``data/SOURCES.md``) are generated from Microsoft's v1.0
CSDL. A body Graph cannot read is answered 400 ``RequestBodyRead`` with the message Graph's OData
reader gives, for example ``The property 'subjekt' does not exist on type
'microsoft.graph.event'. Make sure to only use property names that are defined by the type or
mark the type as open type.`` Enum members match case-insensitively (Graph's own examples write
``"HTML"`` and ``"Required"``); :func:`canonical` rewrites them to the member names Graph returns.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator, exceptions
from referencing import Registry, Resource

from .errors import GraphError

_DIR = Path(__file__).parent / "data" / "schema"


@lru_cache(maxsize=1)
def _files() -> dict[str, dict]:
    out = {}
    for path in sorted(_DIR.glob("microsoft.graph.*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        exact = contents.get("$defs", {}).get("exact")
        if exact is not None:
            exact["x-type"] = contents["title"]
        out[path.name] = contents
    return out


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resources(
        (name, Resource.from_contents(contents)) for name, contents in _files().items()
    )


@lru_cache(maxsize=16)
def _validator(type_name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"microsoft.graph.{type_name}.json"}, registry=_registry())


def _edm(schema: dict) -> str:
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if "boolean" in kinds:
        return "Edm.Boolean"
    if "integer" in kinds:
        return "Edm.Int32" if schema.get("maximum", 2**31) <= 2**31 - 1 else "Edm.Int64"
    if "number" in kinds:
        return "Edm.Double"
    return {
        "date-time": "Edm.DateTimeOffset", "date": "Edm.Date", "uuid": "Edm.Guid",
        "duration": "Edm.Duration",
    }.get(schema.get("format", ""), "Edm.String")


def _node(value) -> str:
    if isinstance(value, dict):
        return "StartObject"
    if isinstance(value, list):
        return "StartArray"
    return "PrimitiveValue"


def _literal(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else json.dumps(value)


def _property(error) -> str:
    for part in reversed(list(error.absolute_path)):
        if isinstance(part, str):
            return part
    return ""


def _leaf(error):
    while error.validator in ("anyOf", "oneOf") and error.context:
        candidates = [
            c for c in error.context
            if not (c.validator == "type" and c.validator_value == "null")
        ]
        if not candidates:
            break
        error = exceptions.best_match(candidates)
    return error


def _message(error) -> str:
    error = _leaf(error)
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    prop = _property(error)
    if error.validator == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = [
            k for k in value if k not in known and not k.startswith("@") and "@odata." not in k
        ]
        type_name = schema.get("x-type", "microsoft.graph.entity")
        return (
            f"The property '{extra[0] if extra else '?'}' does not exist on type '{type_name}'. "
            "Make sure to only use property names that are defined by the type or mark the type "
            "as open type."
        )
    if "x-enumMembers" in schema and error.validator in ("pattern", "enum"):
        return f"Requested value '{value}' was not found."
    if error.validator == "enum" and prop == "@odata.type":
        return (
            f"A type named '{str(value).lstrip('#')}' could not be resolved by the model. When a "
            "model is available, each type name must resolve to a valid type."
        )
    if error.validator == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else list(expected)
        if value is None:
            edm = _edm(schema)
            return (
                f"A null value was found for the property named '{prop}', which has the expected "
                f"type '{edm}[Nullable=False]'. The expected type '{edm}[Nullable=False]' does not "
                "allow null values."
            )
        if "object" in expected:
            return (
                f"An unexpected '{_node(value)}' node was found when reading from the JSON reader. "
                "A 'StartObject' node was expected."
            )
        if "array" in expected:
            return (
                f"An unexpected '{_node(value)}' node was found for property named '{prop}' when "
                "reading from the JSON reader. A 'StartArray' node was expected."
            )
        if isinstance(value, (dict, list)):
            return (
                f"An unexpected '{_node(value)}' node was found for property named '{prop}' when "
                "reading from the JSON reader. A 'PrimitiveValue' node was expected."
            )
    if error.validator in ("type", "pattern", "maximum", "minimum", "format"):
        return (
            f"Cannot convert the literal '{_literal(value)}' to the expected type "
            f"'{_edm(schema)}'."
        )
    return f"The request body is invalid: {error.message}"


def validate(type_name: str, body) -> None:
    """Check a POST/PATCH body of ``microsoft.graph.<type_name>``; raise GraphError 400
    ``RequestBodyRead`` with Graph's message for the first problem found."""
    if not isinstance(body, dict):
        raise GraphError(
            400, "RequestBodyRead",
            f"An unexpected '{_node(body)}' node was found when reading from the JSON reader. A "
            "'StartObject' node was expected.",
        )
    errors = sorted(_validator(type_name).iter_errors(body), key=lambda e: list(e.path))
    if errors:
        raise GraphError(400, "RequestBodyRead", _message(errors[0]))


def _resolve(schema: dict, base: dict | None) -> dict:
    files = _files()
    seen = 0
    while seen < 20:
        seen += 1
        if "anyOf" in schema:
            schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
            continue
        ref = schema.get("$ref")
        if ref:
            name, _, pointer = ref.partition("#")
            doc = files.get(name, base) if name else base
            base = doc
            schema = doc["$defs"]["exact"] if pointer == "/$defs/exact" else doc
            continue
        if "allOf" in schema and "$defs" in schema:
            base, schema = schema, schema["$defs"]["exact"]
            continue
        return schema
    return schema


def _canon(schema: dict, value, base: dict | None):
    schema = _resolve(schema, base)
    members = schema.get("x-enumMembers")
    if members and isinstance(value, str):
        return next((m for m in members if m.lower() == value.lower()), value)
    if isinstance(value, dict) and "properties" in schema:
        return {
            k: _canon(schema["properties"][k], v, base) if k in schema["properties"] else v
            for k, v in value.items()
        }
    if isinstance(value, list) and "items" in schema:
        return [_canon(schema["items"], v, base) for v in value]
    return value


def canonical(type_name: str, body: dict) -> dict:
    """A copy of ``body`` with enum values spelled as Graph's members (``HTML`` -> ``html``)."""
    return _canon({"$ref": f"microsoft.graph.{type_name}.json"}, copy.deepcopy(body), None)
