"""OData query options as Graph accepts them for Outlook calendar items.

Supported: ``$select``, ``$top``, ``$skip``, ``$skiptoken``, ``$orderby`` (one or more
``path [asc|desc]``), ``$filter`` with ``eq ne gt ge lt le``, ``and``, ``or``, ``not``,
parentheses and lambda ``any`` (e.g. ``singleValueExtendedProperties/Any(ep: ep/id eq '...' and
ep/value eq '...')``, api/singlevaluelegacyextendedproperty-get.md), and ``$expand`` of
``singleValueExtendedProperties($filter=id eq '...' or id eq '...')`` and
``exceptionOccurrences``. Anything else raises GraphError 400 (concepts/query-parameters.md).
String comparisons ignore case, as Exchange restrictions do.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

from .errors import GraphError, bad_request

KNOWN_OPTIONS = {"$select", "$top", "$skip", "$skiptoken", "$filter", "$expand", "$orderby",
                 "$deltatoken", "$count", "$search", "$format"}
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),:/])"
    r"|(?P<word>[A-Za-z_$@][A-Za-z0-9_.$@-]*))"
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass
class Query:
    """Parsed query options of one request."""

    select: list | None = None
    top: int | None = None
    skip: int = 0
    filter: object = None  # a callable(item dict) -> bool, or None
    orderby: list = field(default_factory=list)  # [(path list, descending)]
    ext_ids: list | None = None  # expanded singleValueExtendedProperties ids (lower case)
    expand_exceptions: bool = False


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_request(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def _peek(self, offset=0):
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else (None, None)

    def _next(self):
        tok = self._peek()
        self.i += 1
        return tok

    def _expect(self, value):
        kind, tok = self._next()
        if tok is None or tok.lower() != value:
            raise self._error()

    def _error(self):
        return bad_request(f"Invalid filter clause: syntax error in '{self.text}'.")

    def parse(self):
        node = self._or()
        if self.i != len(self.toks):
            raise self._error()
        return node

    def _or(self):
        node = self._and()
        while (self._peek()[1] or "").lower() == "or":
            self._next()
            node = ("or", node, self._and())
        return node

    def _and(self):
        node = self._not()
        while (self._peek()[1] or "").lower() == "and":
            self._next()
            node = ("and", node, self._not())
        return node

    def _not(self):
        if (self._peek()[1] or "").lower() == "not":
            self._next()
            return ("not", self._not())
        return self._primary()

    def _path(self):
        kind, tok = self._next()
        if kind != "word":
            raise self._error()
        parts = [tok]
        while self._peek()[1] == "/" and self._peek(1)[0] == "word":
            if (self._peek(1)[1] or "").lower() == "any" and self._peek(2)[1] == "(":
                break
            self._next()
            parts.append(self._next()[1])
        return parts

    def _literal(self):
        kind, tok = self._next()
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if kind == "word" and tok.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.lower()]
        raise self._error()

    def _primary(self):
        if self._peek()[1] == "(":
            self._next()
            node = self._or()
            self._expect(")")
            return node
        path = self._path()
        if self._peek()[1] == "/" and (self._peek(1)[1] or "").lower() == "any":
            self._next()
            self._next()
            self._expect("(")
            kind, var = self._next()
            if kind != "word":
                raise self._error()
            self._expect(":")
            body = self._or()
            self._expect(")")
            return ("any", path, var, body)
        kind, op = self._next()
        if kind != "word" or op.lower() not in _OPS:
            raise self._error()
        return ("cmp", op.lower(), path, self._literal())


def _resolve(item, path, scope):
    if path[0] in scope:
        value, rest = scope[path[0]], path[1:]
    else:
        value, rest = item, path
    for part in rest:
        if not isinstance(value, dict):
            return None
        if part in value:  # the documented spelling; else any case (OData names)
            value = value.get(part)
            continue
        match = next((k for k in value if k.lower() == part.lower()), None)
        value = value.get(match) if match else None
    return value


def _compare(op, left, right):
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {
            "gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right
        }[op]
    except TypeError:
        return False


def _evaluate(node, item, scope):
    kind = node[0]
    if kind == "and":
        return _evaluate(node[1], item, scope) and _evaluate(node[2], item, scope)
    if kind == "or":
        return _evaluate(node[1], item, scope) or _evaluate(node[2], item, scope)
    if kind == "not":
        return not _evaluate(node[1], item, scope)
    if kind == "any":
        _, path, var, body = node
        values = _resolve(item, path, scope) or []
        return any(_evaluate(body, item, {**scope, var: v}) for v in values)
    _, op, path, literal = node
    return _compare(op, _resolve(item, path, scope), literal)


def parse_filter(text: str):
    """A predicate ``f(item: dict) -> bool`` for a ``$filter`` expression. Raises GraphError."""
    tree = _Parser(text).parse()
    return lambda item: _evaluate(tree, item, {})


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    parts, depth, quote, cur = [], 0, False, ""
    for ch in text:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _ext_ids(options: str) -> list[str]:
    m = re.fullmatch(r"\s*\$filter\s*=\s*(.+)", options, re.S)
    if not m:
        raise bad_request(f"Parsing OData Select and Expand failed: unsupported '{options}'.")
    tree = _Parser(m.group(1)).parse()
    found = []

    def walk(node):
        if node[0] == "or":
            walk(node[1])
            walk(node[2])
        elif node[0] == "cmp" and node[1] == "eq" and [p.lower() for p in node[2]] == ["id"]:
            found.append(str(node[3]).lower())
        else:
            raise bad_request(
                "Parsing OData Select and Expand failed: only 'id eq' comparisons joined by "
                "'or' can filter singleValueExtendedProperties."
            )

    walk(tree)
    return found


def parse(params: dict[str, str], properties: dict[str, str] | None, type_name: str) -> Query:
    """Parse the ``$`` options of ``params`` (names lower-cased by the caller).

    ``properties`` maps lower-case names to canonical names for ``$select`` checks.
    Raises GraphError 400 on unknown options or syntax Graph refuses.
    """
    q = Query()
    for name in params:
        if name.startswith("$") and name not in KNOWN_OPTIONS:
            raise bad_request(f"The query parameter '{name}' is not supported.")
    for name in ("$count", "$search", "$format"):
        if name in params:
            raise bad_request(f"The query parameter '{name}' is not supported.")
    if "$select" in params:
        q.select = []
        for raw in params["$select"].split(","):
            name = raw.strip()
            if not name:
                continue
            canonical = (properties or {}).get(name.lower())
            if properties is not None and canonical is None:
                raise GraphError(400, "RequestBroker--ParseUri",
                                 f"Could not find a property named '{name}' on type "
                                 f"'microsoft.graph.{type_name}'.")
            q.select.append(canonical or name)
    for name in ("$top", "$skip"):
        if name in params:
            value = params[name].strip()
            if not value.isdigit():
                raise bad_request(
                    f"Invalid value '{value}' for {name} query option found. The {name} query "
                    "option requires a non-negative integer value."
                )
            if name == "$top":
                q.top = int(value)
            else:
                q.skip = int(value)
    if "$filter" in params:
        q.filter = parse_filter(params["$filter"])
    if "$orderby" in params:
        for part in _split_top_level(params["$orderby"]):
            bits = part.split()
            if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1].lower() not in
                                              ("asc", "desc")):
                raise bad_request(f"Invalid $orderby clause '{params['$orderby']}'.")
            q.orderby.append((bits[0].split("/"), len(bits) == 2 and bits[1].lower() == "desc"))
    if "$expand" in params:
        for part in _split_top_level(params["$expand"]):
            m = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", part, re.S)
            name = (m.group(1) if m else part).lower()
            if name == "singlevalueextendedproperties" and m and m.group(2):
                q.ext_ids = (q.ext_ids or []) + _ext_ids(m.group(2))
            elif name == "exceptionoccurrences" and m and not m.group(2):
                q.expand_exceptions = True
            else:
                raise bad_request(
                    f"Parsing OData Select and Expand failed: expanding '{part}' is not supported."
                )
    return q


def sort(items: list, orderby: list, get=lambda item: item) -> list:
    """Items sorted by ``$orderby`` terms (stable; None first). ``get`` maps an item to the
    dict the paths are read from."""
    for path, desc in reversed(orderby):
        def key(item, path=path):
            value = _resolve(get(item), path, {})
            return (value is not None, value.lower() if isinstance(value, str) else value)
        items = sorted(items, key=key, reverse=desc)
    return items


def skiptoken(offset: int, size: int) -> str:
    """An opaque ``$skiptoken`` for a page starting at ``offset`` of ``size`` items."""
    raw = json.dumps({"o": offset, "n": size}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_skiptoken(token: str) -> tuple[int, int]:
    """(offset, page size) from a ``$skiptoken``. Raises GraphError 400 when not ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        return int(data["o"]), int(data["n"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("The $skiptoken value is invalid.") from None
