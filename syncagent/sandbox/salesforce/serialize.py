"""Stored records as the REST API returns them (JSON-ready dicts, wire-formatted values)."""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from syncagent.sandbox.salesforce.schema import PREFIX_TO_OBJECT, FieldDef, SObjectDef
from syncagent.sandbox.salesforce.soql import FieldPath
from syncagent.sandbox.salesforce.store import Record
from syncagent.sandbox.salesforce.values import wire

Serializer = Callable[..., dict[str, Any]]
Lookup = Callable[[str | None], Record | None]


def serializer(query_fields: list[FieldPath], obj_name: str, version: str,
               lookup: Lookup) -> Serializer:
    """A function turning a stored record into the REST JSON for the selected fields."""
    return _build_serializer(_field_tree(query_fields), obj_name, version, lookup)


def full_record(obj: SObjectDef, rec: Record, version: str,
                only: list[str] | None = None) -> dict[str, Any]:
    """GET /sobjects/X/{id}: every field (or ?fields=...), wire-formatted."""
    out: dict[str, Any] = {"attributes": {
        "type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"}}
    for f in obj.fields.values():
        if only is None or f.name in only:
            out[f.name] = wire(f, rec.get(f.name))
    return out


FieldTree = dict[str, Any]     # name -> FieldDef (leaf) or (reference FieldDef, subtree)


def _field_tree(paths: list[FieldPath]) -> FieldTree:
    tree: FieldTree = {}
    for path in paths:
        node = tree
        for hop in path.hops:
            rel = hop.relationship or hop.name
            if rel not in node:
                node[rel] = (hop, {})
            node = node[rel][1]
        node[path.target.name] = path.target
    return tree


def _build_serializer(tree: FieldTree, obj_name: str, version: str,
                      lookup: Lookup) -> Serializer:
    """Fields come out in SELECT order, as Salesforce returns them.

    One itemgetter call and one zip per row (stored records hold every field); a parent's
    slot first receives the reference id, then the nested parent object.
    """
    url_prefix = f"/services/data/v{version}/sobjects/"
    keys: list[str] = []
    sources: list[str] = []
    converted: list[tuple[str, FieldDef]] = []
    parents: list[tuple[str, str | None, Serializer]] = []
    for name, node in tree.items():
        keys.append(name)
        if isinstance(node, FieldDef):
            sources.append(name)
            if node.type in ("datetime", "date", "double", "currency", "percent"):
                converted.append((name, node))
        else:
            ref, sub = node
            sources.append(ref.name)
            poly = "Name" if len(ref.reference_to) > 1 else None
            parents.append((name, poly, _build_serializer(sub, "", version, lookup)))
    fetch = itemgetter(*sources)
    single = len(sources) == 1

    def serialize(rec: Record, type_name: str | None = None) -> dict[str, Any]:
        rid = rec["Id"]
        real_type = PREFIX_TO_OBJECT.get(rid[:3], obj_name)
        out: dict[str, Any] = {"attributes": {"type": type_name or real_type,
                                              "url": url_prefix + real_type + "/" + rid}}
        values = fetch(rec)
        out.update(zip(keys, (values,) if single else values, strict=True))
        for name, f in converted:
            value = out[name]
            if value is not None:
                out[name] = wire(f, value)
        for name, poly, child in parents:
            parent = lookup(out[name])
            out[name] = None if parent is None else child(parent, poly)
        return out

    return serialize
