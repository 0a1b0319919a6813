"""Checking a command's --json against its schema and the key rules of specs/cli.md section 5.

``check(name, text)`` validates the output against ``specs/schemas/<name>.schema.json`` and checks
every key its schema names: snake_case, the unit last (``scan_median_ms``, not ``scan_ms_median``),
percentiles spelled p50 .. p99_99. Keys of data maps (stage names, record types, consumers,
sysctls) are data and exempt: their schema has no ``properties``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

SCHEMAS = Path(__file__).resolve().parent.parent / "specs" / "schemas"
KEY = re.compile(r"^[a-z][a-z0-9_]*$")
UNITS = {"ns", "us", "ms", "s", "bytes", "kb", "mb"}
PERCENTILES = {"p50", "p90", "p95", "p99"}


def key_problem(key: str) -> str | None:
    if not KEY.match(key):
        return "not snake_case"
    parts = key.split("_")
    for i, part in enumerate(parts):
        if part in UNITS and i != len(parts) - 1 and parts[i + 1] != "per":
            return "its unit is not last"
        if re.fullmatch(r"p\d+", part) and part not in PERCENTILES:
            return "percentiles are p50, p90, p99, p99_9, p99_99"
    return None


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def key_problems(value, schema: dict, root: dict, path: str = "") -> list[str]:
    schema = _resolve(schema, root)
    for alt in schema.get("oneOf", []) + schema.get("anyOf", []):
        if jsonschema.Draft202012Validator({**alt, "$defs": root.get("$defs", {})}).is_valid(value):
            return key_problems(value, alt, root, path)
    out = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if props is not None and (problem := key_problem(k)):  # an object with named keys
                out.append(f"{path}.{k}: {problem}")
            sub = (props or {}).get(k, extra if isinstance(extra, dict) else {})
            out += key_problems(v, sub, root, f"{path}.{k}" if props is not None else f"{path}.*")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for v in value:
            out += key_problems(v, schema["items"], root, f"{path}[]")
    return out


def check(name: str, text: str, lines: bool = False) -> list:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    docs = [json.loads(line) for line in text.splitlines()] if lines else [json.loads(text)]
    assert docs, f"{name}: no output"
    for doc in docs:
        jsonschema.validate(doc, schema)
        assert not key_problems(doc, schema, schema), key_problems(doc, schema, schema)
    return docs


