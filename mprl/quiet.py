"""Quiet start-ups: Ray's token-authentication notice, printed by every command, filtered out.

Ray 2.60 enables token authentication by default for a local cluster and logs a WARNING
saying so from `ray._private.authentication.authentication_token_setup` at every
`ray.init` (and an INFO line when it generates the token). Both are about a default that
mprl keeps on purpose, so they are dropped by a filter on that one logger; its other
messages (e.g. that authentication is *disabled*) still show.
"""

from __future__ import annotations

import logging

TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
_NOTICES = ("Token authentication is enabled for this Ray cluster", "Generated new authentication token")


class _TokenNoticeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NOTICES)


_FILTER = _TokenNoticeFilter()


def quiet_ray_startup() -> None:
    """Install the filter (idempotent); call before `ray.init`."""
    logger = logging.getLogger(TOKEN_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
