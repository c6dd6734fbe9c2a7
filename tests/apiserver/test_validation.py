"""Validation as the real server does it: 422 ``Invalid`` with upstream's field paths and words.

The expected messages are upstream's (k8s.io/apimachinery validation and
pkg/apis/core/validation), character for character, as kubectl prints them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import configmap

LABEL_FORMAT = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_FORMAT = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_FORMAT = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
KEY_FORMAT = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422
    body: dict[str, Any] = json.loads(caught.value.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Invalid", 422)
    return body


def causes(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["field"], c["reason"], c["message"]) for c in body["details"]["causes"]]


def svc(name: str = "svc", ports: list[dict[str, Any]] | None = None, **spec: Any) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": ports if ports is not None else [{"port": 80}], **spec},
    }


def test_service_port_out_of_range(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    ports = [{"port": 70000, "targetPort": 8080}]
    body = refused(lambda: v1.create_namespaced_service("default", svc(ports=ports)))
    assert body["message"] == (
        'Service "svc" is invalid: spec.ports[0].port: Invalid value: 70000: '
        "must be between 1 and 65535, inclusive"
    )
    assert body["details"] == {
        "name": "svc",
        "kind": "Service",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: 70000: must be between 1 and 65535, inclusive",
                "field": "spec.ports[0].port",
            }
        ],
    }
    assert apiserver.list_objects("services") == []


def test_a_defaulted_target_port_is_checked_too(v1: client.CoreV1Api) -> None:
    # targetPort defaults to port before validation, so both are out of range.
    body = refused(lambda: v1.create_namespaced_service("default", svc(ports=[{"port": 0}])))
    assert [c[0] for c in causes(body)] == ["spec.ports[0].port", "spec.ports[0].targetPort"]


def test_service_protocol_must_be_supported(v1: client.CoreV1Api) -> None:
    ports = [{"port": 80, "protocol": "HTTP"}]
    body = refused(lambda: v1.create_namespaced_service("default", svc(ports=ports)))
    assert causes(body) == [
        (
            "spec.ports[0].protocol",
            "FieldValueNotSupported",
            'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        )
    ]


def test_duplicate_service_ports_as_kubectl_shows_them(v1: client.CoreV1Api) -> None:
    # The case of `kubectl create svc clusterip two-ports --tcp 80:80,443,443`.
    ports = [
        {"name": "80-80", "port": 80},
        {"name": "443", "port": 443},
        {"name": "443", "port": 443},
    ]
    body = refused(lambda: v1.create_namespaced_service("default", svc("two-ports", ports)))
    assert body["message"] == (
        'Service "two-ports" is invalid: [spec.ports[2].name: Duplicate value: "443", '
        'spec.ports[2]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
        "AppProtocol:(*string)(nil), Port:443, TargetPort:intstr.IntOrString{Type:0, IntVal:0, "
        'StrVal:""}, NodePort:0}]'
    )
    assert [c[1] for c in causes(body)] == ["FieldValueDuplicate", "FieldValueDuplicate"]


def test_the_same_port_number_on_two_protocols_is_fine(v1: client.CoreV1Api) -> None:
    ports = [{"name": "dns", "port": 53}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}]
    created = v1.create_namespaced_service("default", svc("dns", ports))
    assert [(p.port, p.protocol) for p in created.spec.ports] == [(53, "TCP"), (53, "UDP")]


def test_several_ports_need_names_and_names_are_labels(v1: client.CoreV1Api) -> None:
    ports = [{"port": 80}, {"name": "Web_UI", "port": 81, "targetPort": "Bad--name"}]
    body = refused(lambda: v1.create_namespaced_service("default", svc(ports=ports)))
    assert causes(body) == [
        ("spec.ports[0].name", "FieldValueRequired", "Required value"),
        ("spec.ports[1].name", "FieldValueInvalid", f'Invalid value: "Web_UI": {LABEL_FORMAT}'),
        (
            "spec.ports[1].targetPort",
            "FieldValueInvalid",
            'Invalid value: "Bad--name": must contain only alpha-numeric characters (a-z, 0-9), '
            "and hyphens (-)",
        ),
        (
            "spec.ports[1].targetPort",
            "FieldValueInvalid",
            'Invalid value: "Bad--name": must not contain consecutive hyphens',
        ),
    ]


def test_service_ports_are_required_unless_headless_or_external_name(
    v1: client.CoreV1Api,
) -> None:
    body = refused(lambda: v1.create_namespaced_service("default", svc(ports=[])))
    assert body["message"] == 'Service "svc" is invalid: spec.ports: Required value'
    headless = v1.create_namespaced_service("default", svc("headless", [], clusterIP="None"))
    assert headless.spec.cluster_ip == "None"
    external = svc("ext", [], type="ExternalName", externalName="example.com")
    assert v1.create_namespaced_service("default", external).spec.type == "ExternalName"


def test_service_type_must_be_known(v1: client.CoreV1Api) -> None:
    body = refused(lambda: v1.create_namespaced_service("default", svc(type="Magic")))
    assert causes(body) == [
        (
            "spec.type",
            "FieldValueNotSupported",
            'Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
            '"LoadBalancer", "NodePort"',
        )
    ]


@pytest.mark.parametrize(
    ("name", "problems"),
    [
        ("1abc", [DNS1035_FORMAT]),
        ("Abc", [DNS1035_FORMAT]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_service_names_are_dns_1035_labels(
    v1: client.CoreV1Api, name: str, problems: list[str]
) -> None:
    body = refused(lambda: v1.create_namespaced_service("default", svc(name)))
    assert causes(body) == [
        ("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {p}') for p in problems
    ]


def test_configmap_and_namespace_name_formats(v1: client.CoreV1Api) -> None:
    body = refused(lambda: v1.create_namespaced_config_map("default", configmap("Bad_Name")))
    assert body["message"] == (
        f'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        f"{SUBDOMAIN_FORMAT}"
    )
    assert v1.create_namespaced_config_map("default", configmap("a.b-1")).metadata.name == "a.b-1"
    body = refused(lambda: v1.create_namespace({"metadata": {"name": "a.b"}}))
    assert causes(body) == [
        ("metadata.name", "FieldValueInvalid", 'Invalid value: "a.b": must not contain dots')
    ]
    body = refused(lambda: v1.create_namespace({"metadata": {"name": "A"}}))
    assert causes(body) == [
        ("metadata.name", "FieldValueInvalid", f'Invalid value: "A": {LABEL_FORMAT}')
    ]
    assert v1.create_namespace({"metadata": {"name": "123-abc"}}).metadata.name == "123-abc"


def test_label_keys_and_values(v1: client.CoreV1Api) -> None:
    labels = {"app.kubernetes.io/name": "ok", "bad key": "x", "k": "not ok!"}
    body = refused(
        lambda: v1.create_namespaced_config_map("default", configmap("a", labels=labels))
    )
    assert [(field, message.split(":")[1]) for field, _, message in causes(body)] == [
        ("metadata.labels", ' "bad key"'),
        ("metadata.labels", ' "not ok!"'),
    ]
    assert "name part must consist of alphanumeric characters" in causes(body)[0][2]
    assert "a valid label must be an empty string" in causes(body)[1][2]


def test_configmap_key_names(v1: client.CoreV1Api) -> None:
    body = refused(
        lambda: v1.create_namespaced_config_map(
            "default", configmap("cm", data={"a b": "1", "..x": "2", "ok_key.1-2": "3"})
        )
    )
    assert causes(body) == [
        ("data[..x]", "FieldValueInvalid", "Invalid value: \"..x\": must not start with '..'"),
        ("data[a b]", "FieldValueInvalid", f'Invalid value: "a b": {KEY_FORMAT}'),
    ]


def test_data_and_binary_data_may_not_share_a_key(v1: client.CoreV1Api) -> None:
    body = {
        "metadata": {"name": "cm"},
        "data": {"k": "v"},
        "binaryData": {"k": base64.b64encode(b"\x00").decode()},
    }
    refusal = refused(lambda: v1.create_namespaced_config_map("default", body))
    assert causes(refusal) == [
        (
            "data[k]",
            "FieldValueInvalid",
            'Invalid value: "k": duplicate of key present in binaryData',
        ),
        (
            "binaryData[k]",
            "FieldValueInvalid",
            'Invalid value: "k": duplicate of key present in data',
        ),
    ]


def test_the_one_mebibyte_limit_counts_decoded_values(v1: client.CoreV1Api) -> None:
    half = 512 * 1024
    binary = base64.b64encode(b"\x00" * half).decode()  # 4/3 as long on the wire
    body = {"metadata": {"name": "cm"}, "data": {"a": "x" * half}, "binaryData": {"b": binary}}
    assert v1.create_namespaced_config_map("default", body).metadata.name == "cm"
    body = {**body, "metadata": {"name": "cm2"}, "data": {"a": "x" * (half + 1)}}
    refusal = refused(lambda: v1.create_namespaced_config_map("default", body))
    assert refusal["message"] == (
        'ConfigMap "cm2" is invalid: []: Too long: must have at most 1048576 bytes'
    )
    assert causes(refusal) == [
        ("[]", "FieldValueTooLong", "Too long: must have at most 1048576 bytes")
    ]


def test_an_immutable_configmap_refuses_changes_field_by_field(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    stored = apiserver.create({**configmap("cm", data={"k": "v"}), "immutable": True})
    changed = {**stored, "data": {"k": "w"}, "immutable": False}
    body = refused(lambda: v1.replace_namespaced_config_map("cm", "default", changed))
    detail = "Forbidden: field is immutable when `immutable` is set"
    assert causes(body) == [
        ("immutable", "FieldValueForbidden", detail),
        ("data", "FieldValueForbidden", detail),
    ]
    assert apiserver.get("configmaps", "default", "cm") == stored


def test_lease_basics(leases: client.CoordinationV1Api) -> None:
    def lease(**spec: Any) -> dict[str, Any]:
        return {"metadata": {"name": "leader"}, "spec": spec}

    body = refused(
        lambda: leases.create_namespaced_lease(
            "default", lease(leaseDurationSeconds=0, leaseTransitions=-1, preferredHolder="a")
        )
    )
    assert body["message"].startswith('Lease.coordination.k8s.io "leader" is invalid: [')
    assert body["details"]["group"] == "coordination.k8s.io"
    assert causes(body) == [
        (
            "spec.leaseDurationSeconds",
            "FieldValueInvalid",
            "Invalid value: 0: must be greater than 0",
        ),
        (
            "spec.leaseTransitions",
            "FieldValueInvalid",
            "Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "spec.preferredHolder",
            "FieldValueForbidden",
            "Forbidden: may only be specified if `strategy` is defined",
        ),
    ]
    created = leases.create_namespaced_lease("default", lease(leaseDurationSeconds=15))
    assert created.spec.lease_duration_seconds == 15


def test_validation_applies_to_patches_and_applies_too(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    stored = apiserver.create(svc())
    body = refused(
        lambda: v1.patch_namespaced_service(
            "svc",
            "default",
            [{"op": "replace", "path": "/spec/ports/0/port", "value": 0}],
            _content_type="application/json-patch+json",
        )
    )
    assert causes(body)[0][0] == "spec.ports[0].port"
    applied = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"bad key": "x"},
    }
    body = refused(
        lambda: v1.patch_namespaced_config_map(
            "cm",
            "default",
            applied,
            field_manager="me",
            _content_type="application/apply-patch+yaml",
        )
    )
    assert causes(body)[0][0] == "data[bad key]"
    assert apiserver.get("services", "default", "svc") == stored
    assert apiserver.get("configmaps", "default", "cm") is None


def test_direct_writes_are_validated_too(apiserver: ApiServer) -> None:
    from dyntoolset.testing.apiserver import ApiError

    with pytest.raises(ApiError) as caught:
        apiserver.create(svc(ports=[{"port": 0}]))
    assert caught.value.code == 422
    assert apiserver.list_objects("services") == []
