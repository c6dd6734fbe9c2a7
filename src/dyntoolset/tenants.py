"""Tenant IDs of Grafana's multi-tenant backends: the ``X-Scope-OrgID`` header.

Loki, Mimir and Tempo share one rule for a tenant ID (dskit's
``ValidTenantID``): at most 150 bytes of letters, digits and ``! - _ . * ' ( )``,
never ``.`` or ``..``; ``a|b`` names several tenants at once (multi-tenant
queries). The value ends up in an HTTP header an agent sends, so nothing
else may pass. Pure: used by plugins' settings validators and ``detect``.
"""

from __future__ import annotations

import re
from typing import Any

#: The longest header value accepted (several tenants joined with ``|``).
MAX_TENANT_HEADER = 1024

_TENANT_ID = re.compile(r"[A-Za-z0-9!._*'()-]{1,150}")


def tenant_problem(value: str, product: str = "Grafana") -> str | None:
    """Why ``value`` is not a valid ``X-Scope-OrgID`` for ``product`` (``Loki``,
    ``Mimir``), or ``None``."""
    if len(value) > MAX_TENANT_HEADER:
        return f"is {len(value)} characters long; the limit is {MAX_TENANT_HEADER}"
    for part in value.split("|"):
        if not _TENANT_ID.fullmatch(part) or part in (".", ".."):
            return (
                f"{value[:40]!r} is not a {product} tenant: use up to 150 letters, digits "
                f"and ! - _ . * ' ( ), or several joined with '|'"
            )
    return None


def tenant_validator(product: str = "Grafana") -> Any:
    """An attrs validator for a settings field holding a tenant (empty: no header)."""

    def validate(instance: Any, attribute: Any, value: str) -> None:
        problem = tenant_problem(value, product) if value else None
        if problem:
            raise ValueError(problem)

    return validate
