"""Who makes a request: the users that tokens stand for, and the anonymous user."""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class TokenUser:
    """Who a token belongs to, as a TokenReview or a SelfSubjectReview reports it.

    ``audiences`` None accepts whatever audiences the review asks for;
    otherwise the review succeeds only if it asks for at least one of them.
    """

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    audiences: tuple[str, ...] | None = None
    extra: Mapping[str, tuple[str, ...]] = attrs.Factory(dict)

    def user_info(self) -> dict[str, object]:
        """The ``UserInfo`` of the API (empty ``uid`` and ``extra`` omitted, as upstream)."""
        info: dict[str, object] = {"username": self.username}
        if self.uid:
            info["uid"] = self.uid
        info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info


#: Who a request is from when the emulator requires no token (as the real
#: server's anonymous authentication reports it).
ANONYMOUS = TokenUser("system:anonymous", groups=("system:unauthenticated",))


def authenticated(user: str | TokenUser) -> TokenUser:
    """The identity behind an accepted token: its user, in ``system:authenticated``."""
    found = user if isinstance(user, TokenUser) else TokenUser(user)
    if "system:authenticated" in found.groups:
        return found
    return attrs.evolve(found, groups=(*found.groups, "system:authenticated"))
