# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""Checks records against docs/schema.json, with the standard library only:
the subset of JSON Schema that file uses ($ref, oneOf, const, enum, type,
minimum, maximum, pattern, properties, required, additionalProperties, items), and
the key order the contract promises (the order of properties)."""
import json
import os
import re

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "schema.json")

_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def load(path=SCHEMA_PATH):
    with open(path) as f:
        return json.load(f)


def _resolve(root, node):
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def errors(root, node, value, where="$"):
    """The ways value breaks node (a list of messages; empty when it conforms)."""
    node = _resolve(root, node)
    if "oneOf" in node:
        fits = [not errors(root, n, value, where) for n in node["oneOf"]]
        if sum(fits) != 1:
            return [f"{where}: matches {sum(fits)} of the oneOf alternatives, not exactly 1"]
    if "const" in node and (value != node["const"] or type(value) is not type(node["const"])):
        return [f"{where}: {value!r} is not {node['const']!r}"]
    if "enum" in node and value not in node["enum"]:
        return [f"{where}: {value!r} is not one of {node['enum']}"]
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{where}: {value!r} is not of type {types}"]
    out = []
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            out.append(f"{where}: {value} < {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            out.append(f"{where}: {value} > {node['maximum']}")
    # JSON Schema's pattern is a search, not a full match: the schema anchors its own.
    if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
        out.append(f"{where}: {value!r} does not match {node['pattern']!r}")
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            out += errors(root, node["items"], item, f"{where}[{i}]")
    if isinstance(value, dict) and "properties" in node:
        props = node["properties"]
        for key in node.get("required", []):
            if key not in value:
                out.append(f"{where}: {key!r} is missing")
        if node.get("additionalProperties") is False:
            out += [f"{where}: {key!r} is not in the schema" for key in value if key not in props]
        # The contract's order: the keys present, in the order of properties.
        present = [k for k in value if k in props]
        if present != [k for k in props if k in value]:
            out.append(f"{where}: keys {present} are not in the schema's order")
        for key, sub in value.items():
            if key in props:
                out += errors(root, props[key], sub, f"{where}.{key}")
    return out


def record_errors(root, record):
    """Checks one record against the definition its "event" names."""
    name = record.get("event")
    if name not in root["$defs"]:
        return [f"unknown record {name!r}"]
    return errors(root, root["$defs"][name], record)


def keys_of(root, name):
    """The keys of a record, in the contract's order."""
    return list(root["$defs"][name]["properties"])
