"""JSON documents over gRPC: google.protobuf.Struct to the plain values a domain validates,
and back. Admin APIs take definitions (rules, policies, calendars) this way."""

from typing import Any

from google.protobuf import json_format, struct_pb2


def to_raw(document: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON values; whole numbers come back as int, not float."""
    raw: dict[str, Any] = _ints(json_format.MessageToDict(document))
    return raw


def _ints(value: Any) -> Any:
    # Struct keeps every number as a double; domains want counts as int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def to_struct(raw: dict[str, Any]) -> struct_pb2.Struct:
    """A Struct of plain values; sets become lists and instants ISO 8601 strings."""
    document = struct_pb2.Struct()
    document.update(_json_safe(raw))
    return document


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
