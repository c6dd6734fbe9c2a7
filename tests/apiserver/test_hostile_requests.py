"""Hostile requests get the real server's status and a ``Status`` body; nothing bad is stored.

Raw sockets send what no well-behaved client would (bad ``Content-Length``,
bodies over 3 MiB); the official client sends the rest. After each, the
emulator must still serve, must not have stored the object, and must have no
server-side traceback.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client

from dyntoolset.testing.apiserver import ApiServer
from dyntoolset.testing.apiserver.bodies import MAX_BODY_BYTES, MAX_DEPTH

from .conftest import configmap

CM_PATH = "/api/v1/namespaces/default/configmaps"


def raw_request(api: ApiServer, head: str, body: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """Send ``head`` (request line and headers, no blank line) and read one answer."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                headers = _headers(data[:head_end])
                length = int(headers.get("content-length", "-1"))
                if len(data) - head_end - 4 >= length >= 0:
                    break
    head_end = data.index(b"\r\n\r\n")
    status = int(data.split(b" ", 2)[1])
    payload = data[head_end + 4 :]
    return status, _headers(data[:head_end]), json.loads(payload) if payload else None


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def call(
    api: ApiServer,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """One request through ``http.client`` (the official client validates bodies first)."""
    if body is not None and not isinstance(body, bytes | str):
        body = json.dumps(body)
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        headers = {"Content-Type": content_type} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def post_head(length: str, path: str = CM_PATH) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}"
    )


def assert_status(payload: Any, code: int, reason: str | None) -> None:
    assert payload["kind"] == "Status"
    assert payload["status"] == "Failure"
    assert payload["code"] == code
    assert payload.get("reason") == reason


def still_serves(api: ApiServer) -> None:
    v1 = client.CoreV1Api(api.api_client)
    assert v1.list_namespaced_config_map("default").items == []
    assert api.server_errors == []


@pytest.mark.parametrize("length", ["abc", "1e3", "10^15", "-1", "0x10", "", "1 2"])
def test_a_malformed_content_length_is_400_and_closes_the_connection(
    apiserver: ApiServer, length: str
) -> None:
    status, headers, payload = raw_request(apiserver, post_head(length), b"{}")
    assert status == 400
    assert headers["connection"] == "close"
    assert_status(payload, 400, "BadRequest")
    assert "Content-Length" in payload["message"]
    still_serves(apiserver)


def test_conflicting_content_lengths_are_400(apiserver: ApiServer) -> None:
    head = post_head("2") + "\r\nContent-Length: 3"
    status, _, payload = raw_request(apiserver, head, b"{} ")
    assert status == 400
    assert "conflicting" in payload["message"]


@pytest.mark.parametrize("length", [str(MAX_BODY_BYTES + 1), str(10**15), str(2**63 - 1)])
def test_a_body_over_3_mib_is_413_without_being_read(apiserver: ApiServer, length: str) -> None:
    status, headers, payload = raw_request(apiserver, post_head(length))
    assert status == 413
    assert headers["connection"] == "close"
    assert_status(payload, 413, "RequestEntityTooLarge")
    assert payload["message"] == "Request entity too large: limit is 3145728"
    still_serves(apiserver)


def test_a_body_of_exactly_3_mib_is_read(apiserver: ApiServer) -> None:
    # Over the 1 MiB ConfigMap limit, so validation (not the body cap) refuses it.
    document = json.dumps(configmap("big", data={"k": ""})).encode()
    padding = MAX_BODY_BYTES - len(document)
    body = document[:-2] + b" " * padding + document[-2:]
    assert len(body) == MAX_BODY_BYTES
    status, _, payload = raw_request(apiserver, post_head(str(len(body))), body)
    assert (status, payload["metadata"]["name"]) == (201, "big")


def test_a_chunked_body_is_read_and_capped(apiserver: ApiServer) -> None:
    body = json.dumps(configmap("chunked")).encode()
    framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = (
        f"POST {CM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked"
    )
    status, _, payload = raw_request(apiserver, head, framed)
    assert (status, payload["metadata"]["name"]) == (201, "chunked")

    too_big = b"%x\r\n" % (MAX_BODY_BYTES + 1)
    status, _, payload = raw_request(apiserver, head.replace("chunked", "chunked"), too_big)
    assert_status(payload, 413, "RequestEntityTooLarge")

    status, _, payload = raw_request(apiserver, head, b"zz\r\n")
    assert (status, payload["message"]) == (400, "malformed chunked encoding")
    assert apiserver.server_errors == []


def test_a_body_shorter_than_announced_is_400(apiserver: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", apiserver.port), timeout=10) as sock:
        sock.sendall(post_head("100").encode() + b"\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)
        data = sock.makefile("rb").read()
    assert data.startswith(b"HTTP/1.1 400")
    assert b"the body ended after 2 of 100 bytes" in data


@pytest.mark.parametrize("value", ["nan", "1.5", "1e3", "inf", "10^15", "99999999999999999999"])
def test_timeout_seconds_must_be_an_integer(apiserver: ApiServer, value: str) -> None:
    for watch in ("true", "false"):
        status, body = call(apiserver, "GET", f"{CM_PATH}?watch={watch}&timeoutSeconds={value}")
        assert status == 400
        assert_status(body, 400, "BadRequest")
        assert body["message"].startswith(f'strconv.ParseInt: parsing "{value}"')
    assert apiserver.active_watches == 0


def test_a_negative_timeout_ends_the_watch_after_the_initial_events(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("one"))
    response = v1.list_namespaced_config_map(
        "default", watch=True, timeout_seconds=-1, _preload_content=False
    )
    lines = [json.loads(line) for line in response.data.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "one")]


def test_limit_must_be_an_integer(apiserver: ApiServer) -> None:
    status, body = call(apiserver, "GET", f"{CM_PATH}?limit=2.5")
    assert (status, body["message"]) == (400, 'strconv.ParseInt: parsing "2.5": invalid syntax')


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 100_000])
def test_deeply_nested_json_is_400_without_recursion_error(
    apiserver: ApiServer, depth: int
) -> None:
    body = b'{"metadata":{"name":"deep"},"data":' + nested(depth) + b"}"
    status, _, payload = raw_request(apiserver, post_head(str(len(body))), body)
    assert status == 400
    assert payload["message"] == f"the body is nested deeper than {MAX_DEPTH} levels"
    assert apiserver.get("configmaps", "default", "deep") is None
    still_serves(apiserver)
    assert all(record.body == body for record in apiserver.requests if record.verb == "create")


def apply(api: ApiServer, path: str, body: str) -> tuple[int, Any]:
    return call(api, "PATCH", f"{path}?fieldManager=me", body, "application/apply-patch+yaml")


def test_deeply_nested_yaml_apply_is_400(apiserver: ApiServer) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "[" * 200
    body += "]" * 200 + "\n"
    status, payload = apply(apiserver, f"{CM_PATH}/deep", body)
    assert status == 400
    assert "error decoding YAML" in payload["message"]
    assert apiserver.get("configmaps", "default", "deep") is None


def alias_bomb(levels: int = 8) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    # Under a field ConfigMaps do not have, so that no type check can stop it first.
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\nextra:\n" + "".join(
        f"  {line}\n" for line in lines
    )


def test_an_alias_bomb_apply_is_refused_and_never_stored(apiserver: ApiServer) -> None:
    status, payload = apply(apiserver, f"{CM_PATH}/bomb", alias_bomb())
    assert status == 400
    assert_status(payload, 400, "BadRequest")
    assert apiserver.get("configmaps", "default", "bomb") is None
    still_serves(apiserver)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_json_are_400(apiserver: ApiServer, constant: str) -> None:
    body = b'{"metadata":{"name":"nan"},"data":{"k":' + constant.encode() + b"}}"
    status, _, payload = raw_request(apiserver, post_head(str(len(body))), body)
    assert status == 400
    assert constant in payload["message"]
    assert apiserver.get("configmaps", "default", "nan") is None


def test_nan_in_a_yaml_apply_is_400(apiserver: ApiServer) -> None:
    body = (
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\n"
        "spec: {leaseDurationSeconds: .nan}\n"
    )
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/l"
    status, payload = apply(apiserver, path, body)
    assert status == 400
    assert "nan" in payload["message"]
    assert apiserver.get("leases", "default", "l") is None


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            {"name": 5},
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name "
            "of type string",
        ),
        (
            5,
            "json: cannot unmarshal number into Go struct field ConfigMap.metadata of type "
            "v1.ObjectMeta",
        ),
        (
            {"name": "x", "labels": {"a": 1}},
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels "
            "of type string",
        ),
        (
            {"name": "x", "finalizers": "a"},
            "json: cannot unmarshal string into Go struct field ObjectMeta.metadata.finalizers "
            "of type []string",
        ),
    ],
)
def test_wrongly_typed_metadata_is_400_as_a_decoding_error(
    apiserver: ApiServer, metadata: Any, message: str
) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    status, payload = call(apiserver, "POST", CM_PATH, body)
    assert status == 400
    assert payload["message"] == (
        f'ConfigMap in version "v1" cannot be handled as a ConfigMap: {message}'
    )
    assert apiserver.list_objects("configmaps") == []
    assert apiserver.server_errors == []


def test_wrongly_typed_spec_fields_are_400(apiserver: ApiServer) -> None:
    cases = [
        ({"ports": [{"port": "80"}]}, "string into Go struct field ServicePort.spec.ports.port"),
        ({"ports": [{"port": 1.5}]}, "number 1.5 into Go struct field ServicePort.spec.ports.port"),
        ({"ports": [{"port": 2**40}]}, f"number {2**40} into Go struct field"),
        ({"ports": {"port": 80}}, "object into Go struct field ServiceSpec.spec.ports of type"),
        ({"ports": [{"port": 80, "targetPort": True}]}, "bool into Go struct field"),
    ]
    for spec, message in cases:
        body = {"metadata": {"name": "svc"}, "spec": spec}
        status, payload = call(apiserver, "POST", "/api/v1/namespaces/default/services", body)
        assert status == 400, spec
        assert message in payload["message"], spec
    assert apiserver.list_objects("services") == []


def test_updates_are_type_checked_too(apiserver: ApiServer) -> None:
    stored = apiserver.create(configmap("cm"))
    status, _ = call(apiserver, "PUT", f"{CM_PATH}/cm", {**stored, "data": {"k": 5}})
    assert status == 400
    assert apiserver.get("configmaps", "default", "cm") == stored


def test_binary_data_must_be_base64(apiserver: ApiServer) -> None:
    body = {"metadata": {"name": "bin"}, "binaryData": {"k": "not base64!"}}
    status, payload = call(apiserver, "POST", CM_PATH, body)
    assert status == 400
    assert "illegal base64 data" in payload["message"]


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "add", "path": "/spec/ports/99999999999999999999", "value": {"port": 1}}],
        [{"op": "add", "path": "/spec/ports/2", "value": {"port": 1}}],
        [{"op": "replace", "path": "/spec/ports/1", "value": {"port": 1}}],
        [{"op": "remove", "path": "/spec/ports/-"}],
        [{"op": "replace", "path": "/spec/ports/01", "value": {"port": 1}}],
        [{"op": "copy", "from": "/spec/ports/7", "path": "/spec/ports/0"}],
        [{"op": "test", "path": "/spec/ports/-1", "value": 1}],
    ],
)
def test_json_patch_with_an_index_out_of_range_is_422(
    apiserver: ApiServer, v1: client.CoreV1Api, operations: list[dict[str, Any]]
) -> None:
    stored = apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    with pytest.raises(client.ApiException) as caught:
        v1.patch_namespaced_service(
            "svc", "default", operations, _content_type="application/json-patch+json"
        )
    assert caught.value.status == 422
    assert_status(json.loads(caught.value.body), 422, "Invalid")
    assert apiserver.get("services", "default", "svc") == stored
    assert apiserver.server_errors == []


def test_json_patch_at_the_end_of_a_list_still_works(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_service(
        "default", {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80, "name": "a"}]}}
    )
    patched = v1.patch_namespaced_service(
        "svc",
        "default",
        [
            {"op": "add", "path": "/spec/ports/1", "value": {"port": 81, "name": "b"}},
            {"op": "add", "path": "/spec/ports/-", "value": {"port": 82, "name": "c"}},
        ],
        _content_type="application/json-patch+json",
    )
    assert [p.port for p in patched.spec.ports] == [80, 81, 82]


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        ("application/json-patch+json", [{"op": "replace", "path": "/metadata", "value": 5}]),
        ("application/merge-patch+json", {"metadata": 5}),
        ("application/merge-patch+json", {"data": {"k": ["list"]}}),
    ],
)
def test_a_patch_whose_result_does_not_decode_is_422_on_patch(
    apiserver: ApiServer, content_type: str, patch: Any
) -> None:
    stored = apiserver.create(configmap("cm", data={"k": "v"}))
    status, payload = call(apiserver, "PATCH", f"{CM_PATH}/cm", patch, content_type)
    assert status == 422
    assert payload["message"].startswith(' "" is invalid: patch: Invalid value: "{')
    assert "json: cannot unmarshal" in payload["message"]
    assert payload["details"]["causes"][0]["field"] == "patch"
    assert apiserver.get("configmaps", "default", "cm") == stored


def test_a_json_pointer_must_be_a_string(apiserver: ApiServer) -> None:
    apiserver.create(configmap("cm"))
    patch = [{"op": "remove", "path": 5}]
    status, _ = call(apiserver, "PATCH", f"{CM_PATH}/cm", patch, "application/json-patch+json")
    assert status == 400


def test_server_side_apply_with_a_wrongly_typed_field_is_400(apiserver: ApiServer) -> None:
    status, payload = apply(
        apiserver, f"{CM_PATH}/cm", "{apiVersion: v1, kind: ConfigMap, metadata: 5}"
    )
    assert status == 400
    assert "failed to create typed patch object (/v1, Kind=ConfigMap)" in payload["message"]
    assert apiserver.list_objects("configmaps") == []


@pytest.mark.parametrize("match", ["Exact", "NotOlderThan"])
def test_a_list_at_a_future_resource_version_is_504(
    apiserver: ApiServer, v1: client.CoreV1Api, match: str
) -> None:
    current = apiserver.resource_version
    future = current + 1000
    with pytest.raises(client.ApiException) as caught:
        v1.list_namespaced_config_map(
            "default", resource_version=str(future), resource_version_match=match
        )
    assert caught.value.status == 504
    payload = json.loads(caught.value.body)
    assert_status(payload, 504, "Timeout")
    assert payload["message"] == (
        f"Timeout: Too large resource version: {future}, current: {current}"
    )
    assert payload["details"]["causes"] == [
        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
    ]
    assert caught.value.headers["Retry-After"] == "1"


def test_a_list_at_the_current_version_still_works(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("cm"))
    rv = str(apiserver.resource_version)
    listed = v1.list_namespaced_config_map(
        "default", resource_version=rv, resource_version_match="Exact"
    )
    assert [i.metadata.name for i in listed.items] == ["cm"]
    assert listed.metadata.resource_version == rv


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
def test_the_emulator_refuses_non_loopback_hosts_unless_allowed(host: str) -> None:
    with pytest.raises(ValueError, match="allow_non_loopback=True"):
        ApiServer(host=host)


def test_the_emulator_serves_ipv6_loopback_with_a_bracketed_url() -> None:
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    try:
        api = ApiServer(host="::1").start()
    except OSError as exc:
        pytest.skip(f"IPv6 loopback is not available here: {exc}")
    try:
        assert api.url == f"http://[::1]:{api.port}"
        assert client.CoreV1Api(api.api_client).list_namespaced_config_map("default").items == []
    finally:
        api.stop()


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"port 99999 is not in 0\.\.65535"):
        ApiServer(port=99999)


def test_a_watch_from_a_future_resource_version_is_504(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    future = apiserver.resource_version + 5
    status, payload = call(
        apiserver, "GET", f"{CM_PATH}?watch=true&resourceVersion={future}&timeoutSeconds=1"
    )
    assert (status, payload["reason"]) == (504, "Timeout")
    assert apiserver.active_watches == 0


def forged_token(raw: str) -> str:
    import base64

    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw",
    [
        '{"rv": 1e400, "start": "a/b"}',
        '{"rv": "nan", "start": "a/b"}',
        "[" * 5000 + "]" * 5000,
        '{"rv": [], "start": 5}',
        "5",
    ],
)
def test_a_forged_continue_token_is_400(apiserver: ApiServer, raw: str) -> None:
    status, payload = call(apiserver, "GET", f"{CM_PATH}?limit=1&continue={forged_token(raw)}")
    assert (status, payload["message"]) == (
        400,
        "continue key is not valid: could not decode the token",
    )
    assert apiserver.server_errors == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"preconditions": 5},
            "json: cannot unmarshal number into Go struct field DeleteOptions.preconditions "
            "of type v1.Preconditions",
        ),
        (
            {"preconditions": {"uid": 5}},
            "json: cannot unmarshal number into Go struct field Preconditions.preconditions.uid "
            "of type string",
        ),
        ([], "json: cannot unmarshal array into Go value of type DeleteOptions"),
    ],
)
def test_malformed_delete_options_are_400(apiserver: ApiServer, options: Any, message: str) -> None:
    stored = apiserver.create(configmap("cm"))
    status, payload = call(apiserver, "DELETE", f"{CM_PATH}/cm", options)
    assert status == 400
    assert payload["message"] == (
        f'DeleteOptions in version "v1" cannot be handled as a DeleteOptions: {message}'
    )
    assert apiserver.get("configmaps", "default", "cm") == stored


def test_null_delete_options_are_no_options(apiserver: ApiServer) -> None:
    apiserver.create(configmap("cm"))
    status, payload = call(apiserver, "DELETE", f"{CM_PATH}/cm", b"null")
    assert (status, payload["status"]) == (200, "Success")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/apis/authentication.k8s.io/v1/tokenreviews", {"spec": 5}),
        ("/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"audiences": 5}}),
        ("/apis/authorization.k8s.io/v1/subjectaccessreviews", {"spec": {"groups": "a"}}),
        (
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {"spec": {"resourceAttributes": {"verb": 1}}},
        ),
        ("/apis/authentication.k8s.io/v1/selfsubjectreviews", []),
    ],
)
def test_malformed_reviews_are_400(apiserver: ApiServer, path: str, body: Any) -> None:
    apiserver.access_policy = lambda spec: True
    status, payload = call(apiserver, "POST", path, body)
    assert status == 400
    assert "cannot be handled as a" in payload["message"]
    assert apiserver.server_errors == []


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        ("NONSENSE", 400),
        ("BREW /api HTTP/1.1", 501),
        ("GET /api HTTP/9.0", 505),
        ("GET /" + "a" * 70000 + " HTTP/1.1", 414),
    ],
)
def test_what_http_server_refuses_itself_gets_a_status_body(
    apiserver: ApiServer, request_line: str, status: int
) -> None:
    answered, headers, payload = raw_request(apiserver, request_line + "\r\nHost: x")
    assert answered == status
    assert headers["connection"] == "close"
    assert (payload["kind"], payload["code"]) == ("Status", status)
    still_serves(apiserver)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["metadata", "spec", "data", "binaryData", "immutable", "status", "kind", "apiVersion"]
)
SUBFIELDS = st.sampled_from(["name", "labels", "ports", "port", "namespace", "k", "0", "-"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=st.dictionaries(FIELDS, JSON_VALUES | st.dictionaries(SUBFIELDS, JSON_VALUES), max_size=4),
    operations=st.lists(
        st.fixed_dictionaries(
            {
                "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]),
                "path": st.lists(FIELDS | SUBFIELDS, max_size=3).map(lambda p: "/" + "/".join(p)),
                "from": st.lists(FIELDS | SUBFIELDS, max_size=3).map(lambda p: "/" + "/".join(p)),
                "value": JSON_VALUES,
            }
        ),
        max_size=3,
    ),
)
def test_no_document_makes_the_emulator_fail_or_store_garbage(
    top: dict[str, Any], operations: list[dict[str, Any]]
) -> None:
    """Whatever JSON arrives, the answer is a success or a 4xx, never a 500 or a traceback."""
    with ApiServer() as api:
        seeded = api.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "svc", "labels": {"a": "b"}},
                "spec": {"ports": [{"name": "web", "port": 80}]},
            }
        )
        svc_path = "/api/v1/namespaces/default/services"
        attempts = [
            ("POST", svc_path, top, "application/json"),
            ("POST", CM_PATH, top, "application/json"),
            ("PUT", f"{svc_path}/svc", top, "application/json"),
            ("PATCH", f"{svc_path}/svc", top, "application/merge-patch+json"),
            ("PATCH", f"{svc_path}/svc", operations, "application/json-patch+json"),
            ("PATCH", f"{CM_PATH}/cm?fieldManager=f", top, "application/apply-patch+yaml"),
        ]
        for method, path, body, content_type in attempts:
            status, payload = call(api, method, path, body, content_type)
            assert status < 500, (method, path, body, payload)
            if status >= 400:
                assert payload["kind"] == "Status"
        assert api.server_errors == []
        stored = api.get("services", "default", "svc")
        assert stored is not None
        # Whatever is stored still passes the emulator's own checks.
        for obj in [*api.list_objects("services"), *api.list_objects("configmaps")]:
            assert isinstance(obj["metadata"]["name"], str)
        if stored["metadata"]["resourceVersion"] == seeded["metadata"]["resourceVersion"]:
            assert stored == seeded


def test_endless_chunked_trailers_are_400(apiserver: ApiServer) -> None:
    head = (
        f"POST {CM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked"
    )
    trailers = b"0\r\n" + b"X-Trailer: y\r\n" * 200 + b"\r\n"
    status, _, payload = raw_request(apiserver, head, trailers)
    assert (status, payload["message"]) == (
        400,
        "malformed chunked encoding: too many trailer lines",
    )
    assert apiserver.list_objects("configmaps") == []
