"""The OpenAPI v2 (JSON and protobuf) and v3 documents, read over HTTP as clients read them."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from dyntoolset.testing.apiserver import ApiServer, openapi, openapi_proto

PROTO_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def fetch(
    apiserver: ApiServer, path: str, accept: str = "application/json"
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(apiserver.url + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [
            r for v in node.values() for r in refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_v2_json_has_the_served_kinds_with_their_patch_strategies(apiserver: ApiServer) -> None:
    status, ctype, body = fetch(apiserver, "/openapi/v2")
    assert (status, ctype) == (200, "application/json")
    doc = json.loads(body)
    assert doc["swagger"] == "2.0"
    definitions = doc["definitions"]
    service = definitions["io.k8s.api.core.v1.Service"]
    assert service["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Service", "version": "v1"}
    ]
    assert definitions["io.k8s.api.coordination.v1.Lease"]["x-kubernetes-group-version-kind"] == [
        {"group": "coordination.k8s.io", "kind": "Lease", "version": "v1"}
    ]
    ports = definitions["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.ServicePort"}
    assert ports["x-kubernetes-patch-strategy"] == "merge"
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    meta = definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["ownerReferences"]["x-kubernetes-patch-merge-key"] == "uid"
    assert meta["finalizers"]["x-kubernetes-list-type"] == "set"
    port = definitions["io.k8s.api.core.v1.ServicePort"]
    assert port["required"] == ["port"]
    assert port["properties"]["port"]["type"] == "integer"
    assert "exposed by this service" in port["properties"]["port"]["description"]
    assert port["properties"]["targetPort"]["$ref"].endswith("intstr.IntOrString")
    # Every reference resolves (kubectl refuses a document with a dangling one).
    for ref in refs(doc):
        assert ref.removeprefix("#/definitions/") in definitions, ref


def test_v2_protobuf_carries_the_same_definitions(apiserver: ApiServer) -> None:
    status, ctype, body = fetch(apiserver, "/openapi/v2", PROTO_ACCEPT)
    assert (status, ctype) == (200, openapi_proto.CONTENT_TYPE)
    document = decode(body)
    assert document[1] == [b"2.0"]  # swagger
    definitions = decode(document[9][0])[1]  # Definitions.additional_properties
    names = {decode(named)[1][0].decode() for named in definitions}
    assert names == set(openapi.definitions())


def test_v2_protobuf_encodes_a_schema_field_by_field() -> None:
    schema = {
        "description": "d",
        "type": "array",
        "items": {"$ref": "#/definitions/x"},
        "x-kubernetes-patch-merge-key": "port",
    }
    fields = decode(openapi_proto.encode_schema(schema))
    assert fields[4] == [b"d"]
    assert decode(fields[22][0]) == {1: [b"array"]}
    items = decode(fields[23][0])  # ItemsItem: its schemas
    assert decode(items[1][0]) == {1: [b"#/definitions/x"]}
    vendor = decode(fields[31][0])
    assert vendor[1] == [b"x-kubernetes-patch-merge-key"]
    assert decode(vendor[2][0]) == {2: [b'"port"\n']}  # YAML text in openapi.v2.Any


def test_protobuf_encoder_refuses_keywords_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="'minimum'"):
        openapi_proto.encode_schema({"type": "integer", "minimum": 1})


def test_v3_index_points_at_one_document_per_group_version(apiserver: ApiServer) -> None:
    status, _, body = fetch(apiserver, "/openapi/v3")
    assert status == 200
    paths = json.loads(body)["paths"]
    assert set(paths) == {
        "api/v1",
        "apis/coordination.k8s.io/v1",
        "apis/authentication.k8s.io/v1",
        "apis/authorization.k8s.io/v1",
    }
    status, _, body = fetch(apiserver, paths["api/v1"]["serverRelativeURL"])
    assert status == 200
    doc = json.loads(body)
    assert doc["openapi"].startswith("3.0")
    schemas = doc["components"]["schemas"]
    assert "io.k8s.api.core.v1.ConfigMap" in schemas
    assert "io.k8s.api.coordination.v1.Lease" not in schemas  # another group-version's
    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    # A described reference is wrapped in allOf, as upstream writes OpenAPI 3.
    target = schemas["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert target["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
    ]
    assert "Number or name of the port" in target["description"]
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "",
        "kind": "Service",
        "version": "v1",
    }
    # Not advertised: the emulator does not validate unknown fields, kubectl must.
    assert "fieldValidation" not in {p["name"] for p in patch["parameters"]}


def test_v3_of_an_unserved_group_version_is_404(apiserver: ApiServer) -> None:
    status, _, body = fetch(apiserver, "/openapi/v3/apis/apps/v1")
    assert status == 404
    assert json.loads(body)["reason"] == "NotFound"


def decode(data: bytes) -> dict[int, list[bytes]]:
    """A protobuf message's length-delimited fields, by number (a test-side wire reader)."""
    fields: dict[int, list[bytes]] = {}
    position = 0

    def varint() -> int:
        nonlocal position
        value = shift = 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while position < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            length = varint()
            fields.setdefault(number, []).append(data[position : position + length])
            position += length
        elif wire == 0:
            fields.setdefault(number, []).append(str(varint()).encode())
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return fields
