"""Credentials and TLS for agent toolsets: one pattern for every detector.

Public API for plugin authors (re-exported by :mod:`dyntoolset.plugin`).

Secrets never enter the ConfigMap. A detector's settings name the
*environment variable of HolmesGPT* that holds each secret, and the toolset
config gets HolmesGPT's own placeholder, ``"{{ env.NAME }}"``, which
HolmesGPT 0.45 expands when it loads the toolset (``holmes/utils/env.py``)
and which makes it mark the toolset invalid when the variable is missing.
A user name is not a secret and may be written as is (``elastic``).

Three parts:

* :class:`CredentialSettings`, an attrs base class for a detector's
  ``Settings``: its fields (``username``, ``username_env``, ``password_env``,
  ``api_key_env``, ``token_env``, ``verify_ssl``, ``ca_file``) are the keys of
  ``detectors.<name>.config``, validated strictly when the configuration is
  loaded;
* :class:`AuthKeys`, which says under which config keys one HolmesGPT
  toolset takes each of them (``None``: the toolset has no such field), with
  :data:`AUTH_KEYS` for the toolsets whose config classes we checked in
  holmesgpt 0.45;
* :func:`credential_config`, the builder that turns the settings into those
  keys, to merge into a :class:`~dyntoolset.model.ToolsetSpec`'s config.

A subclass sets ``auth_keys`` to the :class:`AuthKeys` of the toolset it
writes; a field that toolset cannot carry is then refused at load, naming
the field, instead of being silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# A user name is written as is: keep it to what identity systems use, and keep
# out anything HolmesGPT would read as a placeholder.
_USERNAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")
_CA_FILE = re.compile(r"^/[A-Za-z0-9_./+-]{1,1023}$")


def env_placeholder(name: str) -> str:
    """HolmesGPT's reference to its environment variable ``name``: ``{{ env.NAME }}``."""
    return "{{ env.%s }}" % name  # noqa: UP031 - the braces are literal


def check_env_name(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """attrs validator: an environment variable name (letters, digits, ``_``; not a digit first)."""
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name (letters, digits and '_', "
            f"not starting with a digit)"
        )


def _check_username(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """attrs validator: a plain user name (letters, digits, ``_.@+-``; at most 128)."""
    if value is not None and not _USERNAME.match(value):
        raise ValueError(
            f"{value!r} is not a plain user name (letters, digits and '_.@+-'); "
            f"to read it from HolmesGPT's environment, use username_env"
        )


def _check_ca_file(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """attrs validator: an absolute path (letters, digits, ``_./+-``; no ``..``)."""
    if value is not None and (not _CA_FILE.match(value) or "/../" in value + "/"):
        raise ValueError(
            f"{value!r} is not an absolute file path in HolmesGPT's container "
            f"(letters, digits and '_./+-', no '..')"
        )


@attrs.frozen
class AuthKeys:
    """Where one HolmesGPT toolset's config takes each credential; ``None``: it has none.

    ``bearer_header`` names a mapping of HTTP headers that gets
    ``Authorization: Bearer {{ env.NAME }}`` (Prometheus' ``additional_headers``);
    ``token`` a key that takes the token itself (VictoriaLogs' ``bearer_token``).
    """

    #: The toolset, for error messages (``elasticsearch/cluster``).
    toolset: str
    username: str | None = "username"
    password: str | None = "password"
    api_key: str | None = None
    token: str | None = None
    bearer_header: str | None = None
    verify_ssl: str | None = "verify_ssl"
    ca_file: str | None = None


_ELASTICSEARCH = AuthKeys("elasticsearch", api_key="api_key")
_GRAFANA = AuthKeys("grafana", api_key="api_key")

#: :class:`AuthKeys` of the HolmesGPT 0.45 toolsets whose config classes we read
#: (``ElasticsearchConfig``, ``GrafanaConfig``, ``PrometheusConfig``,
#: ``RabbitMQClusterConfig`` (one entry of ``clusters``), ``VictoriaLogsConfig``).
#: None of them takes a CA bundle path: HolmesGPT trusts extra CAs globally,
#: from the PEM in its ``CERTIFICATE`` environment variable.
AUTH_KEYS: Mapping[str, AuthKeys] = MappingProxyType(
    {
        "elasticsearch/cluster": _ELASTICSEARCH,
        "elasticsearch/data": _ELASTICSEARCH,
        "grafana/dashboards": _GRAFANA,
        "grafana/loki": _GRAFANA,
        "grafana/tempo": _GRAFANA,
        "prometheus/metrics": AuthKeys(
            "prometheus/metrics",
            username=None,
            password=None,
            bearer_header="additional_headers",
        ),
        "rabbitmq/core": AuthKeys("rabbitmq/core"),
        "victorialogs": AuthKeys("victorialogs", token="bearer_token"),
    }
)

#: Every credential field of :class:`CredentialSettings`, in the order documented.
CREDENTIAL_FIELDS = (
    "username",
    "username_env",
    "password_env",
    "api_key_env",
    "token_env",
    "verify_ssl",
    "ca_file",
)
# Which AuthKeys attribute a settings field needs.
_NEEDS = MappingProxyType(
    {
        "username": "username",
        "username_env": "username",
        "password_env": "password",
        "api_key_env": "api_key",
        "token_env": "token",
        "verify_ssl": "verify_ssl",
        "ca_file": "ca_file",
    }
)
# A toolset with neither a token key nor a header map cannot take token_env.
_TOKEN_KEYS = ("token", "bearer_header")


def _accepts(keys: AuthKeys, field: str) -> bool:
    needed = _NEEDS[field]
    if needed == "token":
        return any(getattr(keys, k) is not None for k in _TOKEN_KEYS)
    return getattr(keys, needed) is not None


def accepted_credential_fields(keys: AuthKeys | None) -> tuple[str, ...]:
    """The :data:`CREDENTIAL_FIELDS` a toolset described by ``keys`` can carry (all for ``None``)."""
    return tuple(f for f in CREDENTIAL_FIELDS if keys is None or _accepts(keys, f))


@attrs.frozen(kw_only=True)
class CredentialSettings:
    """Base class of a detector's ``Settings``: how the agent authenticates, and TLS.

    Every field is optional; unset fields write nothing. Subclass it with
    ``@attrs.frozen`` and set ``auth_keys`` to the :class:`AuthKeys` of the
    toolset the detector writes (default: every field allowed, for a
    detector that picks keys itself)::

        @attrs.frozen
        class RabbitMQSettings(CredentialSettings):
            auth_keys = AUTH_KEYS["rabbitmq/core"]
            vhost: str = "/"

    The rules, checked at load (``$.detectors.<name>.config: …``):
    ``password_env`` needs a user (``username`` or ``username_env``, not
    both, unless the class has a ``default_username``) and a user needs
    ``password_env``; an API key, a token and a password exclude each other; a
    ``ca_file`` with ``verify_ssl: false`` is a contradiction; a field the
    toolset cannot carry is refused.
    """

    #: The toolset's keys; ``None`` allows every field (the detector picks keys itself).
    auth_keys: ClassVar[AuthKeys | None] = None
    #: The user of basic auth when only ``password_env`` is set (``elastic``
    #: for Elasticsearch, whose default install has that superuser).
    default_username: ClassVar[str | None] = None

    #: A user name written as is (not a secret), e.g. ``elastic``.
    username: str | None = attrs.field(default=None, validator=_check_username)
    #: Environment variable of HolmesGPT holding the user name.
    username_env: str | None = attrs.field(default=None, validator=check_env_name)
    #: Environment variable of HolmesGPT holding the password (basic auth).
    password_env: str | None = attrs.field(default=None, validator=check_env_name)
    #: Environment variable of HolmesGPT holding an API key.
    api_key_env: str | None = attrs.field(default=None, validator=check_env_name)
    #: Environment variable of HolmesGPT holding a bearer token.
    token_env: str | None = attrs.field(default=None, validator=check_env_name)
    #: ``false`` to skip certificate verification (a self-signed CA); unset:
    #: the toolset's default (verify).
    verify_ssl: bool | None = None
    #: Path of a CA bundle *in HolmesGPT's container*, for toolsets that take one.
    ca_file: str | None = attrs.field(default=None, validator=_check_ca_file)

    def __attrs_post_init__(self) -> None:
        problems = credential_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


def credential_problems(settings: CredentialSettings) -> list[str]:
    """Why ``settings`` cannot be written (empty when it can); each message names its fields."""
    problems: list[str] = []
    if settings.username is not None and settings.username_env is not None:
        problems.append("set username or username_env, not both")
    has_user = settings.username is not None or settings.username_env is not None
    if settings.password_env is not None and not has_user and not settings.default_username:
        problems.append("password_env needs username or username_env")
    for field in ("username", "username_env"):
        if getattr(settings, field) is not None and settings.password_env is None:
            problems.append(f"{field} needs password_env: basic auth takes both")
    secrets = [
        name for name in ("password_env", "api_key_env", "token_env") if getattr(settings, name)
    ]
    if len(secrets) > 1:
        problems.append(f"{' and '.join(secrets)} exclude each other: choose one way to log in")
    if settings.ca_file is not None and settings.verify_ssl is False:
        problems.append("ca_file with verify_ssl: false: a CA is only used when verifying")
    keys = type(settings).auth_keys
    if keys is not None:
        problems.extend(_unsupported(settings, keys))
    return problems


def _unsupported(settings: CredentialSettings, keys: AuthKeys) -> list[str]:
    problems = []
    for field in CREDENTIAL_FIELDS:
        if getattr(settings, field) is not None and not _accepts(keys, field):
            message = f"{field}: HolmesGPT's {keys.toolset} toolset has no such setting"
            if field == "ca_file":
                message += (
                    "; give HolmesGPT the CA bundle in its CERTIFICATE environment "
                    "variable, or set verify_ssl: false"
                )
            problems.append(message)
    return problems


def credential_config(settings: CredentialSettings, keys: AuthKeys) -> dict[str, Any]:
    """The config keys of ``settings`` for the toolset described by ``keys``.

    Merge the result into the toolset's config. Secrets become
    ``{{ env.NAME }}`` placeholders; the user (``username``, ``username_env``
    or the class's ``default_username``) is written with the password (basic
    auth needs both, and Grafana refuses one without the other);
    ``verify_ssl`` only when set. Raises :class:`ValueError` for a
    field the toolset cannot carry (settings whose ``auth_keys`` match
    ``keys`` never do: they were refused at load).
    """
    unsupported = _unsupported(settings, keys)
    if unsupported:
        raise ValueError("; ".join(unsupported))
    config: dict[str, Any] = {}
    if settings.password_env is not None and keys.username and keys.password:
        user = settings.username or settings.default_username
        if settings.username_env is not None:
            user = env_placeholder(settings.username_env)
        config[keys.username] = user
        config[keys.password] = env_placeholder(settings.password_env)
    if settings.api_key_env is not None and keys.api_key:
        config[keys.api_key] = env_placeholder(settings.api_key_env)
    if settings.token_env is not None:
        if keys.token:
            config[keys.token] = env_placeholder(settings.token_env)
        elif keys.bearer_header:
            config[keys.bearer_header] = {
                "Authorization": f"Bearer {env_placeholder(settings.token_env)}"
            }
    if settings.verify_ssl is not None and keys.verify_ssl:
        config[keys.verify_ssl] = settings.verify_ssl
    if settings.ca_file is not None and keys.ca_file:
        config[keys.ca_file] = settings.ca_file
    return config
