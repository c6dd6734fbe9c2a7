"""The Swagger 2.0 document in the protobuf encoding kubectl insists on.

client-go fetches ``/openapi/v2`` only as
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and parses it
as gnostic's ``openapi.v2.Document`` message; a JSON answer is "invalid
wire-format data". This module writes that message by hand (the protobuf wire
format is a few rules: varint tags and lengths, length-delimited strings and
sub-messages), covering what the emulator's document uses: ``swagger``,
``info``, empty ``paths`` and ``definitions`` whose schemas have ``$ref``,
``description``, ``type``, ``format``, ``required``, ``items``,
``properties``, ``additionalProperties`` and vendor extensions (carried, as
gnostic carries them, as YAML text; JSON is YAML).

Field numbers are those of gnostic's ``OpenAPIv2.proto``.
"""

from __future__ import annotations

import json
from typing import Any

#: What kubectl asks for, and what this module's output is labelled.
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# openapi.v2.Document
_DOCUMENT_SWAGGER, _DOCUMENT_INFO, _DOCUMENT_PATHS, _DOCUMENT_DEFINITIONS = 1, 2, 8, 9
# openapi.v2.Info
_INFO_TITLE, _INFO_VERSION = 1, 2
# openapi.v2.Schema
_SCHEMA_REF, _SCHEMA_FORMAT, _SCHEMA_DESCRIPTION = 1, 2, 4
_SCHEMA_REQUIRED, _SCHEMA_ADDITIONAL, _SCHEMA_TYPE, _SCHEMA_ITEMS = 19, 21, 22, 23
_SCHEMA_ALL_OF, _SCHEMA_PROPERTIES, _SCHEMA_VENDOR = 24, 25, 31
# Named* pairs, Properties/Definitions, TypeItem, ItemsItem, AdditionalPropertiesItem
_NAME, _VALUE = 1, 2
_ADDITIONAL_PROPERTIES = 1
_REPEATED_VALUE = 1
_ITEMS_SCHEMA = 1
_ADDITIONAL_SCHEMA, _ADDITIONAL_BOOLEAN = 1, 2
# openapi.v2.Any
_ANY_YAML = 2

_LENGTH_DELIMITED = 2
_VARINT = 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or sub-message)."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _field(number, text.encode()) if text else b""


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(int(value))


def _named(number: int, name: str, value: bytes) -> bytes:
    return _field(number, _string(_NAME, name) + _field(_VALUE, value))


def encode_schema(schema: dict[str, Any]) -> bytes:
    """One ``openapi.v2.Schema`` message.

    Raises:
        ValueError: the schema uses a keyword this encoder does not know
            (so a new keyword in the generator cannot be dropped silently).
    """
    out = bytearray()
    for key, value in schema.items():
        if key == "$ref":
            out += _string(_SCHEMA_REF, value)
        elif key == "format":
            out += _string(_SCHEMA_FORMAT, value)
        elif key == "description":
            out += _string(_SCHEMA_DESCRIPTION, value)
        elif key == "required":
            for name in value:
                out += _string(_SCHEMA_REQUIRED, name)
        elif key == "type":
            out += _field(_SCHEMA_TYPE, _string(_REPEATED_VALUE, value))
        elif key == "items":
            out += _field(_SCHEMA_ITEMS, _field(_ITEMS_SCHEMA, encode_schema(value)))
        elif key == "allOf":
            for part in value:
                out += _field(_SCHEMA_ALL_OF, encode_schema(part))
        elif key == "properties":
            properties = b"".join(
                _named(_ADDITIONAL_PROPERTIES, name, encode_schema(prop))
                for name, prop in value.items()
            )
            out += _field(_SCHEMA_PROPERTIES, properties)
        elif key == "additionalProperties":
            item = (
                _bool(_ADDITIONAL_BOOLEAN, value)
                if isinstance(value, bool)
                else _field(_ADDITIONAL_SCHEMA, encode_schema(value))
            )
            out += _field(_SCHEMA_ADDITIONAL, item)
        elif key.startswith("x-"):
            out += _named(_SCHEMA_VENDOR, key, _string(_ANY_YAML, json.dumps(value) + "\n"))
        else:
            raise ValueError(f"the protobuf encoder does not know the schema keyword {key!r}")
    return bytes(out)


def encode_document(document: dict[str, Any]) -> bytes:
    """The ``openapi.v2.Document`` message of a Swagger 2.0 document (see the module doc)."""
    info = document.get("info") or {}
    definitions = b"".join(
        _named(_ADDITIONAL_PROPERTIES, name, encode_schema(schema))
        for name, schema in (document.get("definitions") or {}).items()
    )
    if document.get("paths"):
        raise ValueError("the protobuf encoder writes no paths")
    return (
        _string(_DOCUMENT_SWAGGER, document["swagger"])
        + _field(
            _DOCUMENT_INFO,
            _string(_INFO_TITLE, info.get("title", ""))
            + _string(_INFO_VERSION, info.get("version", "")),
        )
        + _field(_DOCUMENT_PATHS, b"")
        + _field(_DOCUMENT_DEFINITIONS, definitions)
    )
