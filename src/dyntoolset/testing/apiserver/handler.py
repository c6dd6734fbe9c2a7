"""The HTTP side: routing, the verbs, watch streaming, proxying and fault shaping."""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import hmac
import http.client
import json
import re
import select
import socket
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

import attrs

from dyntoolset.testing.apiserver import (
    bodies,
    fields,
    openapi,
    openapi_proto,
    strategic,
    table,
    typecheck,
)
from dyntoolset.testing.apiserver.faults import Fault, RequestInfo, RequestRecord
from dyntoolset.testing.apiserver.identity import ANONYMOUS, TokenUser, authenticated
from dyntoolset.testing.apiserver.resources import (
    RESOURCES,
    ApiError,
    ResourceType,
    bad_request,
    find_resource,
    gone,
    not_found,
)
from dyntoolset.testing.apiserver.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from dyntoolset.testing.apiserver.store import Event, Key, object_key

if TYPE_CHECKING:
    from dyntoolset.testing.apiserver.server import ApiServer

_TRUE = ("true", "1", "yes")
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "authorization",
        "host",
        "content-length",
    }
)
# Backend response headers the proxy does not pass on: hop-by-hop ones, and those
# this server sets itself.
_RESPONSE_SKIP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-type",
        "date",
        "server",
    }
)
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+json",
)
_NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource")
_INT64 = re.compile(r"[+-]?[0-9]+")
#: Status reasons of the errors ``http.server`` answers before a request is routed.
_PROTOCOL_REASONS = {
    400: "BadRequest",
    405: "MethodNotAllowed",
    413: "RequestEntityTooLarge",
    414: "RequestURITooLong",
    431: "RequestHeaderFieldsTooLarge",
}
_UNDECODED = object()  # marks a body not decoded yet (None is a valid decoded body)


@attrs.frozen
class Route:
    """What a URL path addresses."""

    kind: str  # "discovery", "openapi", "resource", "proxy", "health"
    resource: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    subpath: str = ""  # discovery, openapi: the path; proxy: the path after /proxy


def parse_route(path: str) -> Route | None:
    """Route a URL path, or None when nothing is served there."""
    if len(path) > 1:
        path = path.rstrip("/")
    if path in ("/healthz", "/livez", "/readyz"):
        return Route("health")
    if path in ("/version", "/api", "/apis") or path in ("/api/v1",):
        return Route("discovery", subpath=path)
    if path == "/openapi/v2" or path == "/openapi/v3" or path.startswith("/openapi/v3/"):
        return Route("openapi", subpath=path)
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis" and len(parts) in (2, 3):
        return Route("discovery", subpath=path.rstrip("/"))
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    res = find_resource(group, version, rest[0])
    if res is None:
        # GET /api/v1/namespaces/{name} addresses the namespace object itself.
        if namespace is None and rest[0] == "namespaces" and len(rest) == 2:
            return Route("resource", find_resource("", "v1", "namespaces"), None, rest[1])
        return None
    if namespace is not None and not res.namespaced:
        return None
    if len(rest) == 1:
        return Route("resource", res, namespace)
    if len(rest) == 2:
        return Route("resource", res, namespace, rest[1])
    if res.plural == "services" and namespace is not None and rest[2] == "proxy":
        raw_parts = path.strip("/").split("/")
        proxy_index = len(raw_parts) - len(rest) + 3
        return Route("proxy", res, namespace, rest[1], "/" + "/".join(raw_parts[proxy_index:]))
    return None


def verb_of(route: Route | None, method: str, query: dict[str, str]) -> str | None:
    """The Kubernetes verb of a request (None for discovery and unknown paths)."""
    if route is None or route.kind in ("discovery", "openapi", "health"):
        return "get" if route is not None else None
    if route.kind == "proxy":
        return "proxy"
    collection = route.name is None
    if method == "GET":
        if collection:
            return "watch" if query.get("watch", "").lower() in _TRUE else "list"
        return "get"
    if method == "POST" and collection:
        return "create"
    if method == "PUT" and not collection:
        return "update"
    if method == "PATCH" and not collection:
        return "patch"
    if method == "DELETE":
        return "deletecollection" if collection else "delete"
    return None


def _encode_continue(rv: int, key: Key) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, Key]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        rv = int(data["rv"])
        namespace, _, name = str(data["start"]).rstrip("\x00").partition("/")
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise bad_request("continue key is not valid: could not decode the token") from None
    return rv, (namespace, name)


def int_param(query: dict[str, str], name: str) -> int | None:
    """An integer query parameter (``limit``, ``timeoutSeconds``), None when absent.

    Raises:
        ApiError: 400 with the message the real server's parameter decoding
            gives (Go's ``strconv.ParseInt``) for anything but a decimal int64:
            ``nan``, ``1.5``, ``1e3``, out of range.
    """
    text = query.get(name)
    if text is None or text == "":
        return None
    if not _INT64.fullmatch(text):
        raise bad_request(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise bad_request(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def too_large_resource_version(wanted: int, current: int) -> ApiError:
    """504, as the real server answers a list from a version it has not reached.

    (The real server first waits about 3 s for the version to arrive; the
    emulator's versions only move when someone writes, so it answers at once.)
    """
    return ApiError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {wanted}, current: {current}",
        {
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
        {"Retry-After": "1"},
    )


def check_list_options(query: dict[str, str], watch: bool) -> None:
    """Refuse what upstream's ``ValidateListOptions`` and list storage refuse.

    ``resourceVersionMatch`` needs a ``resourceVersion``, is not allowed with a
    continue token, must be ``Exact`` or ``NotOlderThan`` (``Exact`` not with
    version 0) and, on a watch, needs ``sendInitialEvents`` (not served here):
    422 ``Invalid`` on ``ListOptions.meta.k8s.io``. A continue token with a
    ``resourceVersion`` other than ``0`` is a 400.
    """
    int_param(query, "limit")
    int_param(query, "timeoutSeconds")
    match = query.get("resourceVersionMatch") or ""
    rv = query.get("resourceVersion") or ""
    token = query.get("continue") or ""
    causes: list[tuple[str, str]] = []  # (reason, message)
    if match and watch:
        causes.append(
            (
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden for watch unless "
                "sendInitialEvents is provided",
            )
        )
    elif match:
        if not rv:
            causes.append(
                (
                    "FieldValueForbidden",
                    "Forbidden: resourceVersionMatch is forbidden unless resourceVersion "
                    "is provided",
                )
            )
        if token:
            causes.append(
                (
                    "FieldValueForbidden",
                    "Forbidden: resourceVersionMatch is forbidden when continue is provided",
                )
            )
        if match not in ("Exact", "NotOlderThan"):
            causes.append(
                (
                    "FieldValueNotSupported",
                    f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""',
                )
            )
        if match == "Exact" and rv == "0":
            causes.append(
                (
                    "FieldValueForbidden",
                    'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                )
            )
    if causes:
        errors = [f"resourceVersionMatch: {message}" for _, message in causes]
        summary = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise ApiError(
            422,
            "Invalid",
            f'ListOptions.meta.k8s.io "" is invalid: {summary}',
            {
                "group": "meta.k8s.io",
                "kind": "ListOptions",
                "causes": [
                    {"reason": reason, "message": message, "field": "resourceVersionMatch"}
                    for reason, message in causes
                ],
            },
        )
    if token and not watch and rv not in ("", "0"):
        raise bad_request("specifying resource version is not allowed when using continue")


def _status_success(res: ResourceType, obj: dict[str, Any] | None) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": res.plural}
    if res.group:
        details["group"] = res.group
    if obj is not None:
        details["name"] = obj["metadata"]["name"]
        details["uid"] = obj["metadata"].get("uid")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


class Handler(BaseHTTPRequestHandler):
    """One connection to the emulator (HTTP/1.1, keep-alive, chunked watches)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "dyntoolset-apiserver-emulator"

    @property
    def emulator(self) -> ApiServer:
        """The emulator this server belongs to."""
        return self.server.emulator  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What ``http.server`` refuses by itself, answered with a ``Status`` body too.

        That is a malformed request line, an unsupported method or HTTP
        version, a request line or headers over its limits; the connection is
        then closed, as nothing more can be read from it reliably.
        """
        reason = _PROTOCOL_REASONS.get(code, "")
        error = ApiError(code, reason, message or http.client.responses.get(code, "error"))
        payload = json.dumps(error.status()).encode()
        self.close_connection = True
        # http.server answers an unparsable request line as HTTP/0.9 (a bare body);
        # like Go's server, answer HTTP/1.1 with a status line and headers instead.
        self.request_version = "HTTP/1.1"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def do_GET(self) -> None:
        """Serve GET."""
        self._serve("GET")

    def do_POST(self) -> None:
        """Serve POST."""
        self._serve("POST")

    def do_PUT(self) -> None:
        """Serve PUT."""
        self._serve("PUT")

    def do_PATCH(self) -> None:
        """Serve PATCH."""
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        """Serve DELETE."""
        self._serve("DELETE")

    def do_HEAD(self) -> None:
        """Serve HEAD (proxy only)."""
        self._serve("HEAD")

    # --- the request cycle ---------------------------------------------------------------

    def _serve(self, method: str) -> None:
        emu = self.emulator
        split = urllib.parse.urlsplit(self.path)
        path = split.path or "/"
        query = {
            k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()
        }
        route = parse_route(path)
        verb = verb_of(route, method, query)
        res = route.resource if route is not None else None
        info = RequestInfo(
            method,
            path,
            query,
            verb,
            res.plural if res else None,
            route.namespace if route else None,
            route.name if route else None,
        )
        self._info = info
        self._raw_query = split.query
        self._content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        self._body_raw = b""
        self._decoded: Any = _UNDECODED
        self._user: str | None = None
        # Server-side printing (kubectl get): the includeObject option, or None.
        self._table: str | None = None
        # On a watch answered as Tables: its resource, and whether a row went out yet.
        self._table_res: ResourceType | None = None
        self._table_rows = False
        self._identity: TokenUser = ANONYMOUS
        self._fault_kind: str | None = None
        self._recorded = False
        self._drop = False
        try:
            self._body_raw = self._read_body()
            self._authenticate()
            latency, fault = emu.faults.select(info)
            if latency and emu.stopping.wait(latency):
                self._abort()
                return
            if fault is not None and self._pre_fault(fault):
                return
            # A drop cuts whatever answer comes (watches drop between events instead).
            self._drop = fault is not None and fault.kind == "drop" and verb != "watch"
            if verb in ("get", "list", "watch") and table.wants_table(
                self.headers.get("Accept") or ""
            ):
                self._table = table.include_option(query)
            if route is None:
                raise _NOT_FOUND
            if route.kind == "health":
                self._send_raw(200, b"ok", "text/plain; charset=utf-8")
            elif route.kind == "discovery":
                self._send_json(200, self._discovery(route.subpath))
            elif route.kind == "openapi":
                self._openapi(route.subpath)
            elif route.kind == "proxy":
                self._proxy(route, method)
            elif verb == "watch":
                assert res is not None
                self._watch(res, route.namespace, query, fault)
            else:
                assert res is not None
                status, payload = self._resource(res, route, method, verb, query)
                if self._table is not None and verb in ("get", "list"):
                    payload = self._as_table(res, payload, verb)
                self._send_json(status, payload)
        except ApiError as exc:
            self._send_json(exc.code, exc.status(), headers=exc.headers)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - an emulator bug must answer, not hang the client
            error = ApiError(500, "InternalError", f"emulator error: {exc!r}")
            try:
                self._send_json(500, error.status())
            except OSError:
                self.close_connection = True

    def _record(self, status: int) -> None:
        if self._recorded:
            return
        self._recorded = True
        info = self._info
        parsed: Any = None
        if self._decoded is not _UNDECODED:
            parsed = self._decoded
        elif self._body_raw:
            parsed = bodies.decode_or_raw(self._body_raw, self._content_type)
        name = info.name
        if name is None and info.verb == "create" and isinstance(parsed, dict):
            meta = parsed.get("metadata")  # creates name it in the body (if it is well formed)
            body_name = meta.get("name") if isinstance(meta, dict) else None
            name = body_name if isinstance(body_name, str) else None
        self.emulator._log(
            RequestRecord(
                info.method,
                info.path,
                info.query,
                info.verb,
                info.resource,
                info.namespace,
                name,
                status,
                self._content_type or None,
                parsed,
                self._fault_kind,
                self._user,
            )
        )

    def _read_body(self) -> bytes:
        """The request body, within the real server's limits.

        A body that is refused is not read, so the connection cannot be reused
        (its unread bytes would be taken for the next request): it is closed
        after the answer.
        """
        try:
            encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
            if encoding == "chunked":
                return bodies.read_chunked(self.rfile)
            if encoding:
                raise ApiError(501, "", f"unsupported transfer encoding: {encoding!r}")
            length = bodies.content_length(self.headers.get_all("Content-Length") or [])
            body = self.rfile.read(length) if length else b""
        except ApiError:
            self.close_connection = True
            raise
        if len(body) < length:
            self.close_connection = True
            raise bad_request(f"the body ended after {len(body)} of {length} bytes")
        return body

    def _authenticate(self) -> None:
        tokens = self.emulator.tokens
        if not tokens:
            return
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            given = token.strip().encode("utf-8", "surrogateescape")
            for known, user in tokens.items():
                if hmac.compare_digest(given, known.encode("utf-8")):
                    self._identity = authenticated(user)
                    self._user = self._identity.username
                    return
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def _pre_fault(self, fault: Fault) -> bool:
        """Shape the answer before any work; True when the request is finished."""
        self._fault_kind = fault.kind
        if fault.kind == "status":
            headers = {}
            details: dict[str, Any] = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(
                    int(fault.retry_after)
                    if float(fault.retry_after).is_integer()
                    else fault.retry_after
                )
                details["retryAfterSeconds"] = int(fault.retry_after)
            reason = fault.reason or http.client.responses.get(fault.status, "Error").replace(
                " ", ""
            )
            if fault.status == 429 and not fault.reason:
                reason = "TooManyRequests"
            if fault.status == 500 and not fault.reason:
                reason = "InternalError"
            error = ApiError(
                fault.status,
                reason,
                fault.message or f"injected fault: {fault.status}",
                details or None,
                headers,
            )
            self._send_json(fault.status, error.status(), headers=headers)
            return True
        if fault.kind == "gone":
            if self._info.verb == "watch":
                return False  # in-stream, after the configured number of events
            self._send_json(410, gone(fault.message or "injected fault: 410 Expired").status())
            return True
        if fault.kind == "stall" and (self._info.verb != "watch" or fault.after_events is None):
            self._record(0)
            self.emulator.stopping.wait(fault.seconds)
            self._abort()
            return True
        return False

    def _abort(self) -> None:
        """Cut the connection without a proper end (the client sees a dropped connection)."""
        self._record(0)
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- responses -----------------------------------------------------------------------

    def _send_raw(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")  # as Go's server says it
        for name, value in [*(headers or {}).items(), *extra_headers]:
            self.send_header(name, value)
        self.end_headers()
        if truncate or self._drop:
            self.wfile.write(payload[: len(payload) // 2])
            self._abort()
            return
        self.wfile.write(payload)

    def _send_json(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers, truncate)

    # --- discovery -----------------------------------------------------------------------

    def _discovery(self, path: str) -> dict[str, Any]:
        emu = self.emulator
        if path == "/version":
            return dict(emu.version_info)
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": emu.address}
                ],
            }
        groups: dict[str, list[ResourceType]] = {}
        for res in RESOURCES:
            if res.group:
                groups.setdefault(res.group, []).append(res)

        def group_doc(name: str) -> dict[str, Any]:
            version = groups[name][0].version
            gv = {"groupVersion": f"{name}/{version}", "version": version}
            return {"name": name, "versions": [gv], "preferredVersion": gv}

        if path == "/apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [group_doc(g) for g in sorted(groups)],
            }
        parts = path.strip("/").split("/")
        if path == "/api/v1":
            group, version = "", "v1"
        elif len(parts) == 2 and parts[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(parts[1])}
        elif len(parts) == 3 and parts[1] in groups and parts[2] == groups[parts[1]][0].version:
            group, version = parts[1], parts[2]
        else:
            raise _NOT_FOUND
        resources: list[dict[str, Any]] = []
        for res in RESOURCES:
            if res.group != group or res.version != version:
                continue
            entry: dict[str, Any] = {
                "name": res.plural,
                "singularName": res.singular,
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": list(res.verbs),
            }
            if res.short_names:
                entry["shortNames"] = list(res.short_names)
            if res.categories:
                entry["categories"] = list(res.categories)
            resources.append(entry)
            if res.plural == "services":
                resources.append(
                    {
                        "name": "services/proxy",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "ServiceProxyOptions",
                        "verbs": ["create", "delete", "get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _openapi(self, path: str) -> None:
        version = self.emulator.version_info["gitVersion"]
        document: Any
        if path == "/openapi/v2":
            document = openapi.swagger_v2(version)
            if "protobuf" in (self.headers.get("Accept") or ""):
                # What client-go asks for (and the only encoding it parses).
                payload = openapi_proto.encode_document(document)
                self._send_raw(200, payload, openapi_proto.CONTENT_TYPE)
                return
        elif path == "/openapi/v3":
            document = openapi.openapi_v3_index(version)
        else:
            document = openapi.openapi_v3(path.removeprefix("/openapi/v3/"), version)
            if document is None:
                raise _NOT_FOUND
        self._send_json(200, document)

    # --- resources -----------------------------------------------------------------------

    def _json_body(self) -> Any:
        """The decoded body (JSON, or YAML for YAML media types), decoded once."""
        if not self._body_raw:
            raise bad_request("the request has no body")
        if self._decoded is _UNDECODED:
            self._decoded = bodies.decode(self._body_raw, self._content_type)
        return self._decoded

    def _manager(self, query: dict[str, str]) -> str:
        manager = query.get("fieldManager")
        if manager:
            return manager
        agent = self.headers.get("User-Agent") or "unknown"
        return agent.split("/")[0] or "unknown"

    def _resource(
        self, res: ResourceType, route: Route, method: str, verb: str | None, query: dict[str, str]
    ) -> tuple[int, Any]:
        emu = self.emulator
        namespace = route.namespace
        if not res.stored and verb == "create":
            typecheck.check_body(res, self._json_body())
        if res.plural == "tokenreviews" and verb == "create":
            return 201, emu._review_token(self._json_body())
        if res.plural == "subjectaccessreviews" and verb == "create":
            return 201, emu._review_access(self._json_body())
        if res.plural == "selfsubjectaccessreviews" and verb == "create":
            return 201, emu._review_self_access(self._json_body(), self._identity)
        if res.plural == "selfsubjectreviews" and verb == "create":
            self._json_body()  # a body is required, though it says nothing
            return 201, emu._review_self(self._identity)
        if (
            verb is None
            or verb not in (*res.verbs, "deletecollection")
            or (verb == "deletecollection" and (not res.stored or res.plural == "namespaces"))
        ):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if verb in ("create", "update", "patch", "delete", "deletecollection") and query.get(
            "dryRun"
        ):
            # Not emulated: refuse loudly rather than persist a "dry" write.
            raise bad_request(
                "dryRun is not supported by the API emulator (the write would be persisted)"
            )
        if verb == "list":
            return 200, self._list(res, namespace, query)
        if verb == "create":
            if res.namespaced and namespace is None:
                raise _NOT_FOUND
            body = self._json_body()
            typecheck.check_body(res, body)
            if (body.get("metadata") or {}).get("resourceVersion"):
                # Upstream's storage refuses it with a plain error: a 500 with no reason.
                # (Direct seeding, e.g. from exported manifests, accepts it.)
                raise ApiError(
                    500, "", "resourceVersion should not be set on objects to be created"
                )
            return 201, emu._create(res, body, namespace, self._manager(query))
        if verb == "deletecollection":
            return 200, self._delete_collection(res, namespace, query)
        assert route.name is not None
        name = route.name
        if res.namespaced and namespace is None:
            raise _NOT_FOUND
        ns = namespace or ""
        if verb == "get":
            obj = emu.store.get(res, ns, name)
            if obj is None:
                raise not_found(res, name)
            return 200, obj
        if verb == "update":
            body = self._json_body()
            typecheck.check_body(res, body)
            body_name = (body.get("metadata") or {}).get("name")
            if body_name and body_name != name:
                raise bad_request(
                    f"the name of the object ({body_name}) does not match the "
                    f"name on the URL ({name})"
                )
            return 200, emu._replace(res, ns, name, body, self._manager(query))
        if verb == "patch":
            return self._patch(res, ns, name, query)
        if verb == "delete":
            expect_rv = expect_uid = None
            if self._body_raw:
                options = self._json_body()
                if options is not None:  # JSON null decodes as no options, as in Go
                    typecheck.check_body(res, options, "DeleteOptions")
                pre = (options or {}).get("preconditions") or {}
                expect_rv, expect_uid = pre.get("resourceVersion"), pre.get("uid")
            if res.plural == "namespaces":  # answered with the Terminating namespace
                return 200, emu._delete_namespace(name, expect_rv, expect_uid)
            last = emu.store.delete(res, ns, name, expect_rv, expect_uid)
            return 200, _status_success(res, last)
        raise ApiError(405, "MethodNotAllowed", "method not allowed")

    def _patch(
        self, res: ResourceType, ns: str, name: str, query: dict[str, str]
    ) -> tuple[int, Any]:
        emu = self.emulator
        ctype = self._content_type
        if ctype not in _PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media "
                f"types include: {', '.join(_PATCH_TYPES)}",
            )
        patch = self._json_body()
        if ctype in ("application/apply-patch+yaml", "application/apply-patch+json"):
            manager = query.get("fieldManager")
            if not manager:
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                    "Required value: is required for apply patch",
                    {
                        "kind": "PatchOptions",
                        "group": "meta.k8s.io",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager",
                            }
                        ],
                    },
                )
            force = query.get("force", "").lower() in _TRUE
            return emu._apply(res, ns, name, patch, manager, force)
        if ctype == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise bad_request("a merge patch must be a JSON object")

            def change(current: dict[str, Any]) -> dict[str, Any]:
                return dict(fields.merge_patch(current, patch))
        elif ctype == "application/strategic-merge-patch+json":

            def change(current: dict[str, Any]) -> dict[str, Any]:
                return strategic.patch_object(res, current, patch)
        elif ctype == "application/json-patch+json":

            def change(current: dict[str, Any]) -> dict[str, Any]:
                result = fields.json_patch(current, patch)
                if not isinstance(result, dict):
                    raise bad_request("the patched document is not an object")
                return result
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media "
                f"types include: application/json-patch+json, application/merge-patch"
                f"+json, application/apply-patch+yaml ({ctype!r} given)",
            )
        return 200, emu._patch_object(res, ns, name, change, self._manager(query))

    def _selected(
        self, res: ResourceType, namespace: str | None, query: dict[str, str]
    ) -> tuple[Any, Any]:
        labels = parse_label_selector(query.get("labelSelector"))
        field_reqs = parse_field_selector(query.get("fieldSelector"))
        return labels, field_reqs

    def _list(
        self, res: ResourceType, namespace: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        store = self.emulator.store
        labels, field_reqs = self._selected(res, namespace, query)
        check_list_options(query, watch=False)
        limit = int_param(query, "limit") or 0
        token = query.get("continue")
        rv_param = query.get("resourceVersion") or ""
        start: Key | None = None
        if token:
            list_rv, start = _decode_continue(token)
            try:
                state, ordered = store.listing(res, list_rv)
            except ApiError:
                raise gone(
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue "
                    "parameter."
                ) from None
        elif rv_param not in ("", "0"):
            try:
                wanted = int(rv_param)
            except ValueError:
                raise bad_request(f"invalid resourceVersion {rv_param!r}") from None
            with store.cond:
                current = store.resource_version
                if wanted > current:
                    raise too_large_resource_version(wanted, current)
                # Exact lists the state at that version; NotOlderThan (or no
                # match) may answer from anything as new, so the current state.
                exact = query.get("resourceVersionMatch") == "Exact"
                list_rv = wanted if exact else current
                state, ordered = store.listing(res, list_rv)
        else:
            with store.cond:
                list_rv = store.resource_version
                state, ordered = store.listing(res, list_rv)
        # The sorted keys of this namespace (all of them), from the page's start on.
        first, end = 0, len(ordered)
        if namespace is not None:
            first = bisect.bisect_left(ordered, (namespace, ""))
            end = bisect.bisect_left(ordered, (namespace + "\x00", ""))
        if start is not None:
            first = max(first, bisect.bisect_right(ordered, start))
        # Selectors are matched only as far as the page needs: one match past
        # the limit says whether another page follows.
        matched: list[dict[str, Any]] = []
        more = False
        for index in range(first, end):
            obj = state[ordered[index]]
            if labels_match(labels, obj) and fields_match(field_reqs, obj):
                if limit > 0 and len(matched) == limit:
                    more = True
                    break
                matched.append(obj)
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if more:
            meta["continue"] = _encode_continue(list_rv, object_key(matched[-1]))
            if not labels and not field_reqs:
                meta["remainingItemCount"] = end - first - limit
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version,
            "metadata": meta,
            # As on the wire from a real server: items carry no kind/apiVersion of their own.
            "items": [
                {k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
                for item in matched
            ],
        }

    def _delete_collection(
        self, res: ResourceType, namespace: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        store = self.emulator.store
        labels, field_reqs = self._selected(res, namespace, query)
        for obj in store.items(res, namespace):
            if labels_match(labels, obj) and fields_match(field_reqs, obj):
                key = object_key(obj)
                with contextlib.suppress(ApiError):  # deleted meanwhile
                    store.delete(res, key[0], key[1])
        return _status_success(res, None)

    # --- watch ---------------------------------------------------------------------------

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, etype: str, obj: dict[str, Any]) -> None:
        if self._table is not None and etype in ("ADDED", "MODIFIED", "DELETED"):
            # As upstream: the first event's Table carries the column definitions.
            meta = {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")}
            assert self._table_res is not None
            obj = table.table(
                self._table_res, [obj], meta, self._table, with_columns=not self._table_rows
            )
            self._table_rows = True
        self._chunk(json.dumps({"type": etype, "object": obj}).encode() + b"\n")

    def _as_table(self, res: ResourceType, payload: dict[str, Any], verb: str) -> dict[str, Any]:
        assert self._table is not None
        if verb == "list":
            return table.table(res, payload["items"], payload["metadata"], self._table)
        meta = {"resourceVersion": payload["metadata"].get("resourceVersion", "")}
        return table.table(res, [payload], meta, self._table)

    def _watch_events(
        self, res: ResourceType, namespace: str | None, labels: Any, field_reqs: Any, event: Event
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if event.resource != res.plural or (namespace is not None and event.key[0] != namespace):
            return

        def match(obj: dict[str, Any] | None) -> bool:
            return obj is not None and labels_match(labels, obj) and fields_match(field_reqs, obj)

        if event.type == "ADDED":
            if match(event.obj):
                yield "ADDED", event.obj
        elif event.type == "DELETED":
            if match(event.obj):
                yield "DELETED", event.obj
        else:
            new, old = match(event.obj), match(event.prev)
            if new and old:
                yield "MODIFIED", event.obj
            elif new:
                yield "ADDED", event.obj
            elif old and event.prev is not None:
                prev = json.loads(json.dumps(event.prev))
                prev["metadata"]["resourceVersion"] = str(event.rv)
                yield "DELETED", prev

    def _watch(
        self, res: ResourceType, namespace: str | None, query: dict[str, str], fault: Fault | None
    ) -> None:
        emu = self.emulator
        store = emu.store
        self._table_res, self._table_rows = res, False
        labels, field_reqs = self._selected(res, namespace, query)
        check_list_options(query, watch=True)
        bookmarks = query.get("allowWatchBookmarks", "").lower() in _TRUE
        requested = int_param(query, "timeoutSeconds") or 0
        # As upstream: 0 is the same as unset, the server's own (long) timeout; a
        # negative one ends the watch at once. Capped to keep the deadline a sane float.
        timeout = min(requested, 10**9) if requested else emu.watch_timeout
        rv_param = query.get("resourceVersion") or ""
        if rv_param not in ("", "0"):
            try:
                int(rv_param)
            except ValueError:
                raise bad_request(f"invalid resourceVersion {rv_param!r}") from None
        deadline = time.monotonic() + timeout
        initial: list[dict[str, Any]] = []
        too_old: ApiError | None = None
        with store.cond:
            expire_gen = store.expire_generation
            bookmark_gen = store.bookmark_generation
            if rv_param in ("", "0"):
                cursor = store.resource_version
                state = store.snapshot(res, cursor)
                initial = [
                    state[k]
                    for k in sorted(state)
                    if (namespace is None or k[0] == namespace)
                    and labels_match(labels, state[k])
                    and fields_match(field_reqs, state[k])
                ]
            else:
                cursor = int(rv_param)
                if cursor > store.resource_version:  # as for a list: never silently skip
                    raise too_large_resource_version(cursor, store.resource_version)
                if cursor < store.compacted_resource_version:
                    too_old = gone(
                        f"too old resource version: {cursor} ({store.compacted_resource_version})"
                    )
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        emu._watch_started()
        try:
            if too_old is not None:
                self._event("ERROR", too_old.status())
                self._end_stream()
                return
            sent = 0
            if (
                fault is not None
                and fault.kind in ("drop", "stall", "gone")
                and self._watch_fault(fault, sent)
            ):
                return
            for obj in initial:
                self._event("ADDED", obj)
                sent += 1
                if fault is not None and self._watch_fault(fault, sent):
                    return
            last_bookmark = time.monotonic()
            while True:
                events: list[Event] = []
                ending: str | None = None
                send_bookmark = False
                with store.cond:
                    while True:
                        if store.closed:
                            ending = "abort"
                            break
                        if store.expire_generation != expire_gen:
                            ending = "expired"
                            break
                        try:
                            events = store.events_after(cursor)
                        except ApiError:
                            ending = "lagging"
                            break
                        if events:
                            break
                        now = time.monotonic()
                        if bookmarks and (
                            store.bookmark_generation != bookmark_gen
                            or now - last_bookmark >= emu.bookmark_interval
                        ):
                            bookmark_gen = store.bookmark_generation
                            send_bookmark = True
                            break
                        if now >= deadline:
                            ending = "timeout"
                            break
                        if self._client_gone():
                            ending = "abort"
                            break
                        # Wake twice a second to notice a client that hung up.
                        wait = min(deadline - now, 0.5)
                        if bookmarks:
                            wait = min(wait, emu.bookmark_interval - (now - last_bookmark))
                        store.cond.wait(max(wait, 0.001))
                    compacted = store.compacted_resource_version
                if ending == "abort":
                    self._abort()
                    return
                if ending == "timeout":
                    self._end_stream()
                    return
                if ending in ("expired", "lagging"):
                    error = gone(f"too old resource version: {cursor} ({compacted})")
                    self._event("ERROR", error.status())
                    self._end_stream()
                    return
                for event in events:
                    for etype, obj in self._watch_events(res, namespace, labels, field_reqs, event):
                        self._event(etype, obj)
                        sent += 1
                        if fault is not None and self._watch_fault(fault, sent):
                            return
                    cursor = event.rv
                if send_bookmark:
                    last_bookmark = time.monotonic()
                    self._event(
                        "BOOKMARK",
                        {
                            "kind": res.kind,
                            "apiVersion": res.api_version,
                            "metadata": {"resourceVersion": str(cursor)},
                        },
                    )
        finally:
            emu._watch_ended()

    def _client_gone(self) -> bool:
        """Whether the watching client closed its side (it sends nothing while watching)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _watch_fault(self, fault: Fault, sent: int) -> bool:
        """Fire a mid-watch fault once ``sent`` events went out; True when the stream ended."""
        if fault.kind not in ("drop", "stall", "gone") or sent < (fault.after_events or 0):
            return False
        if fault.kind == "gone":
            self._event(
                "ERROR", gone(fault.message or "too old resource version: injected fault").status()
            )
            self._end_stream()
        elif fault.kind == "drop":
            partial = b'{"type":"MODIFIED","object":{"kind":'
            self.wfile.write(b"%x\r\n%s" % (len(partial) + 40, partial))
            self._abort()
        else:
            self.wfile.flush()
            self.emulator.stopping.wait(fault.seconds)
            self._abort()
        return True

    # --- service proxy -------------------------------------------------------------------

    @contextlib.contextmanager
    def _backend_connection(self, sock: socket.socket) -> Iterator[None]:
        """Track a connection to a backend so that stopping the emulator cuts it."""
        httpd: Any = self.server
        with httpd.sockets_lock:
            httpd.backend_sockets.add(sock)
        try:
            if self.emulator.stopping.is_set():
                sock.shutdown(socket.SHUT_RDWR)
            yield
        finally:
            with httpd.sockets_lock:
                httpd.backend_sockets.discard(sock)

    def _proxy(self, route: Route, method: str) -> None:
        emu = self.emulator
        assert route.name is not None and route.namespace is not None
        name, port = route.name, ""
        pieces = route.name.split(":")
        if len(pieces) == 3:
            _scheme, name, port = pieces
        elif len(pieces) == 2:
            name, port = pieces
        service = emu.store.get(route.resource or RESOURCES[0], route.namespace, name)
        if service is None:
            raise not_found(RESOURCES[0], name)
        target = emu._proxy_target(route.namespace, name, port, service)
        if target is None:
            raise ApiError(
                503, "ServiceUnavailable", f'no endpoints available for service "{route.name}"'
            )
        target_split = urllib.parse.urlsplit(target)
        sub = urllib.parse.quote(urllib.parse.unquote(route.subpath), safe="/:@!$&'()*+,;=-._~")
        base = target_split.path.rstrip("/")
        url = base + (sub if sub != "/" or not base else "") or "/"
        if self._raw_query:
            url += "?" + self._raw_query
        conn_cls = (
            http.client.HTTPSConnection
            if target_split.scheme == "https"
            else http.client.HTTPConnection
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        conn = conn_cls(
            target_split.hostname or "127.0.0.1", target_split.port, timeout=emu.proxy_timeout
        )
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise ApiError(
                    503, "ServiceUnavailable", f"error trying to reach service: {exc}"
                ) from None
            with self._backend_connection(conn.sock):
                try:
                    conn.request(method, url, body=self._body_raw or None, headers=headers)
                    response = conn.getresponse()
                except (OSError, http.client.HTTPException) as exc:
                    raise ApiError(
                        503, "ServiceUnavailable", f"error trying to reach service: {exc}"
                    ) from None
                self._relay(response, method)
        finally:
            conn.close()

    def _relay(self, response: http.client.HTTPResponse, method: str) -> None:
        """Stream the backend's answer to the client as it comes, as the real proxy does.

        The body is not buffered: a client that stops reading (a health check at
        its body cap) stops the backend too, once socket buffers are full. A
        backend that fails mid-body cuts the client's connection.
        """
        ctype = response.getheader("Content-Type") or "application/octet-stream"
        passed = [(k, v) for k, v in response.getheaders() if k.lower() not in _RESPONSE_SKIP]
        if method == "HEAD" or self._drop:
            # A drop fault cuts the (buffered) answer halfway, as for any request.
            try:
                payload = response.read() if method != "HEAD" else b""
            except (OSError, http.client.HTTPException) as exc:
                raise ApiError(
                    503, "ServiceUnavailable", f"error trying to reach service: {exc}"
                ) from None
            self._send_raw(response.status, payload, ctype, extra_headers=passed)
            return
        self._record(response.status)
        self.send_response(response.status)
        self.send_header("Content-Type", ctype)
        length = response.length  # None when the backend streams chunked or until close
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        for name, value in passed:
            self.send_header(name, value)
        self.end_headers()
        while True:
            try:
                data = response.read1(65536)
            except (OSError, http.client.HTTPException):
                self._abort()  # the backend failed mid-body: so does the answer
                return
            if not data:
                break
            if length is None:
                self._chunk(data)
            else:
                self.wfile.write(data)
        if response.length:  # fewer bytes than announced
            self._abort()
            return
        if length is None:
            self._end_stream()
