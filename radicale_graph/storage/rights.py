"""Radicale rights narrowed by Exchange's sharing (Radicale's rights plugin family).

:class:`ExchangeRights` wraps the configured ``[rights]`` backend (a rights file, or any other):
for every path the letters it grants are intersected with what Exchange allows the login
(:meth:`.storage.Storage.exchange_rights`, see :mod:`.access`). The rights file can therefore
narrow what Exchange's sharing gives, never widen it. Radicale then advertises only what is
left (``current-user-privilege-set``: ``read``, or ``read-free-busy`` for ``f``) and refuses
everything else with 403 before the storage is reached; the reason, naming the owner and
the role, is noted for the answer (:func:`.errors.note_denial`).
"""

from __future__ import annotations

from radicale import rights as radicale_rights

from . import errors

_NARROWED = "RrifWw"  # the letters Exchange decides; others (D, O, T, ...) pass through


def narrow(base: str, allowed: str) -> str:
    """The letters of ``base`` that ``allowed`` permits: ``R``, ``r``, ``W``, ``w`` when in
    both; ``i`` (GET only) where ``r`` is allowed; ``f`` (free/busy) where both allow at least
    free/busy (``r`` implies ``f``); every other letter of ``base`` unchanged."""
    out = {c for c in base if c not in _NARROWED}
    out |= {c for c in "RrWw" if c in base and c in allowed}
    if "i" in base and "r" in allowed:
        out.add("i")
    if set(base) & {"r", "f"} and set(allowed) & {"r", "f"} and "r" not in out:
        out.add("f")
    return "".join(sorted(out))


class ExchangeRights(radicale_rights.BaseRights):
    """``base`` (the configured rights backend) narrowed by ``storage``'s Exchange rights."""

    def __init__(self, base: radicale_rights.BaseRights, storage) -> None:
        super().__init__(base.configuration)
        self._base = base
        self._storage = storage

    def authorization(self, user: str, user_groups: set, path: str) -> str:
        """Granted letters for ``user`` on the sanitized ``path`` (Radicale 3.9
        ``BaseRights.authorization``). Raises the Graph client's errors when Exchange's
        sharing cannot be read (recorded for the answer)."""
        base = self._base.authorization(user, user_groups, path)
        if not base:
            first = path.strip("/").split("/")[0]
            login = (user or "").lower()
            if first and first != login and first.lower() == login:
                errors.note_denial(f"your calendar home is /{login}/ (mailbox addresses are "
                                   f"lower case in paths), not /{first}/")
            elif first and first.lower() != login:
                self._storage.exchange_rights(user, path)  # notes why: not the login's home
            else:
                errors.note_denial(f"the gateway's rights file ([rights]) does not let "
                                   f"{user or 'an anonymous user'} open /{path.strip('/')}/")
            return base
        return narrow(base, self._storage.exchange_rights(user, path))
