"""Validation of the served kinds as the real API server does it: 422 ``Invalid``, same words.

Each rule reports a :class:`FieldError` with the field path, type and detail
that upstream's ``field.Error`` carries (``spec.ports[0].port: Invalid value:
70000: must be between 1 and 65535, inclusive``); :func:`refuse` renders a
list of them as the real ``Status``: ``Service "x" is invalid: …`` with one
cause per error. Every error of an object is reported at once, metadata
first, as upstream collects them. Objects reach these functions already
type-checked (:mod:`.typecheck`) and defaulted (:mod:`.objects`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from dyntoolset.testing.apiserver.resources import ApiError, ResourceType

#: The API server's limit on a ConfigMap's values (data and binaryData together).
CONFIGMAP_MAX_BYTES = 1024 * 1024
#: The API server's limit on all annotations of an object, keys and values.
ANNOTATIONS_MAX_BYTES = 256 * 1024

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + r"(\." + _LABEL + ")*"
_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED + ")?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_REASONS = {
    "Required value": "FieldValueRequired",
    "Invalid value": "FieldValueInvalid",
    "Duplicate value": "FieldValueDuplicate",
    "Unsupported value": "FieldValueNotSupported",
    "Too long": "FieldValueTooLong",
    "Forbidden": "FieldValueForbidden",
}
_OMITTED = object()


@attrs.frozen
class GoValue:
    """A value already rendered as Go's ``%#v`` prints it (structs in messages)."""

    text: str


@attrs.frozen
class FieldError:
    """One problem with one field, as upstream's ``field.Error``."""

    type: str
    field: str
    value: Any = _OMITTED
    detail: str = ""

    def body(self) -> str:
        """``Invalid value: "x": detail`` (the cause's message)."""
        text = self.type
        if self.value is not _OMITTED:
            text += f": {_render(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def _render(value: Any) -> str:
    """A value as Go's ``field.Error`` prints it: strings quoted, numbers bare."""
    if isinstance(value, GoValue):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def required(field: str, detail: str = "") -> FieldError:
    """``Required value``."""
    return FieldError("Required value", field, detail=detail)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    """``Invalid value: VALUE: detail``."""
    return FieldError("Invalid value", field, value, detail)


def forbidden(field: str, detail: str) -> FieldError:
    """``Forbidden: detail``."""
    return FieldError("Forbidden", field, detail=detail)


def too_long(field: str, limit: int) -> FieldError:
    """``Too long: must have at most N bytes``."""
    return FieldError("Too long", field, detail=f"must have at most {limit} bytes")


def not_supported(field: str, value: Any, supported: Iterable[str]) -> FieldError:
    """``Unsupported value: "x": supported values: "a", "b"``."""
    listed = ", ".join(json.dumps(v) for v in supported)
    return FieldError("Unsupported value", field, value, f"supported values: {listed}")


def refuse(res: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    """The 422 ``Invalid`` ``Status`` for ``errors`` (at least one)."""
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    rendered = list(dict.fromkeys(str(error) for error in errors))  # upstream drops repeats
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details: dict[str, Any] = {"name": name}
    if res.group:
        details["group"] = res.group
    details["kind"] = res.kind
    details["causes"] = [
        {"reason": _REASONS[error.type], "message": error.body(), "field": error.field}
        for error in errors
    ]
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)


# --- name formats (k8s.io/apimachinery/pkg/util/validation) ---------------------------------


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    shown = " or ".join(f"'{example}', " for example in examples)  # Go's spacing, kept
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns1123_label(value: str) -> list[str]:
    """Problems of an RFC 1123 label (namespace names, Service port names)."""
    problems = [_max_len(63)] if len(value) > 63 else []
    if not _matches(_LABEL, value):
        if _matches(_SUBDOMAIN, value):
            problems.append("must not contain dots")
        else:
            problems.append(
                _regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                    "characters or '-', and must start and end with an alphanumeric character",
                    _LABEL,
                    "my-name",
                    "123-abc",
                )
            )
    return problems


def dns1123_subdomain(value: str) -> list[str]:
    """Problems of an RFC 1123 subdomain (ConfigMap and Lease names)."""
    problems = [_max_len(253)] if len(value) > 253 else []
    if not _matches(_SUBDOMAIN, value):
        problems.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
                _SUBDOMAIN,
                "example.com",
            )
        )
    return problems


def dns1035_label(value: str) -> list[str]:
    """Problems of an RFC 1035 label (Service names)."""
    problems = [_max_len(63)] if len(value) > 63 else []
    if not _matches(_DNS1035, value):
        problems.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                _DNS1035,
                "my-name",
                "abc-123",
            )
        )
    return problems


def qualified_name(value: str) -> list[str]:
    """Problems of a label or annotation key: ``[prefix/]name``."""
    problems: list[str] = []
    message = (
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and "
        "end with an alphanumeric character"
    )
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(message, _QUALIFIED, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            problems.append("prefix part must be non-empty")
        else:
            problems += [f"prefix part {p}" for p in dns1123_subdomain(parts[0])]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part " + _max_len(63))
    if not _matches(_QUALIFIED, name):
        problems.append(
            "name part " + _regex_error(message, _QUALIFIED, "MyName", "my.name", "123-abc")
        )
    return problems


def label_value(value: str) -> list[str]:
    """Problems of a label value."""
    problems = [_max_len(63)] if len(value) > 63 else []
    if not _matches(_LABEL_VALUE, value):
        problems.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return problems


def config_map_key(value: str) -> list[str]:
    """Problems of a ConfigMap (or Secret) key."""
    problems = [_max_len(253)] if len(value) > 253 else []
    if not _matches(_CONFIG_KEY, value):
        problems.append(
            _regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    if value == ".":
        problems.append("must not be '.'")
    elif value == "..":
        problems.append("must not be '..'")
    elif value.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def port_number(value: int) -> list[str]:
    """Problems of a port number."""
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def port_name(value: str) -> list[str]:
    """Problems of an IANA service name (a ``targetPort`` given by name)."""
    problems = [_max_len(15)] if len(value) > 15 else []
    if not _matches("[-a-z0-9]+", value):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        problems.append("must contain at least one letter (a-z)")
    if "--" in value:
        problems.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def _each(field: str, value: Any, problems: list[str]) -> list[FieldError]:
    return [invalid(field, value, problem) for problem in problems]


# --- the kinds ----------------------------------------------------------------------------

NameRule = Callable[[str], list[str]]
_NAME_RULES: dict[str, NameRule] = {
    "services": dns1035_label,
    "namespaces": dns1123_label,
    "configmaps": dns1123_subdomain,
    "leases": dns1123_subdomain,
}


def _metadata(res: ResourceType, meta: dict[str, Any]) -> list[FieldError]:
    errors = _each("metadata.name", meta["name"], _NAME_RULES[res.plural](meta["name"]))
    if res.namespaced:
        namespace = meta.get("namespace") or ""
        errors += _each("metadata.namespace", namespace, dns1123_label(namespace))
    for key, value in sorted((meta.get("labels") or {}).items()):
        errors += _each("metadata.labels", key, qualified_name(key))
        errors += _each("metadata.labels", value, label_value(value))
    annotations = meta.get("annotations") or {}
    for key in sorted(annotations):
        errors += _each("metadata.annotations", key, qualified_name(key.lower()))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        errors.append(too_long("metadata.annotations", ANNOTATIONS_MAX_BYTES))
    return errors


def _duplicate_port(protocol: str, port: int) -> GoValue:
    return GoValue(
        f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), '
        f'Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, '
        "NodePort:0}"
    )


def _service(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors: list[FieldError] = []
    kind = spec.get("type") or "ClusterIP"
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and kind != "ExternalName":
        errors.append(required("spec.ports"))
    names: set[str] = set()
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errors.append(required(f"{path}.name"))
        elif name:
            errors += _each(f"{path}.name", name, dns1123_label(name))
            if name in names:
                errors.append(FieldError("Duplicate value", f"{path}.name", name))
            names.add(name)
        number = port.get("port") or 0
        errors += _each(f"{path}.port", number, port_number(number))
        protocol = port.get("protocol") or ""
        if not protocol:
            errors.append(required(f"{path}.protocol"))
        elif protocol not in _PROTOCOLS:
            errors.append(not_supported(f"{path}.protocol", protocol, _PROTOCOLS))
        target = port.get("targetPort")
        if isinstance(target, int):
            errors += _each(f"{path}.targetPort", target, port_number(target))
        elif isinstance(target, str):
            errors += _each(f"{path}.targetPort", target, port_name(target))
    if kind not in _SERVICE_TYPES:
        errors.append(not_supported("spec.type", kind, _SERVICE_TYPES))
    seen: set[tuple[str, int]] = set()
    for index, port in enumerate(ports):
        key = (str(port.get("protocol") or ""), int(port.get("port") or 0))
        if key in seen:
            errors.append(
                FieldError("Duplicate value", f"spec.ports[{index}]", _duplicate_port(*key))
            )
        seen.add(key)
    return errors


def _configmap(obj: dict[str, Any]) -> list[FieldError]:
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    errors: list[FieldError] = []
    size = 0
    for field, values, other, other_name in (
        ("data", data, binary, "binaryData"),
        ("binaryData", binary, data, "data"),
    ):
        for key in sorted(values):
            path = f"{field}[{key}]"
            errors += _each(path, key, config_map_key(key))
            if key in other:
                errors.append(invalid(path, key, f"duplicate of key present in {other_name}"))
            value = values[key]
            size += len(base64.b64decode(value)) if field == "binaryData" else len(value.encode())
    if size > CONFIGMAP_MAX_BYTES:
        # Upstream passes an empty path: the error is about the whole object.
        errors.append(too_long("[]", CONFIGMAP_MAX_BYTES))
    return errors


def _lease(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errors.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errors.append(
            invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errors.append(
            forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
        )
    return errors


_SPEC_RULES: dict[str, Callable[[dict[str, Any]], list[FieldError]]] = {
    "services": _service,
    "configmaps": _configmap,
    "leases": _lease,
}


def validate(res: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Refuse ``obj`` (a create, or an update of ``old``) as the real server would.

    Raises:
        ApiError: 422 ``Invalid`` listing every problem.
    """
    errors = _metadata(res, obj["metadata"])
    rule = _SPEC_RULES.get(res.plural)
    if rule is not None:
        errors += rule(obj)
    if old is not None and res.plural == "configmaps" and old.get("immutable"):
        errors += _immutable_configmap(obj, old)
    if errors:
        raise refuse(res, str(obj["metadata"]["name"]), errors)


def _immutable_configmap(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    detail = "field is immutable when `immutable` is set"
    errors = []
    if not new.get("immutable"):
        errors.append(forbidden("immutable", detail))
    for field in ("data", "binaryData"):
        if (new.get(field) or {}) != (old.get(field) or {}):
            errors.append(forbidden(field, detail))
    return errors
