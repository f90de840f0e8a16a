"""Signed action links: one sale, one action, expiring, verified against every key.

Tokens are itsdangerous ``URLSafeTimedSerializer`` payloads salted per purpose, so a login
token can never pass for a sale action and the other way round. The serializer is given the
whole ``secret_keys`` list: the last key signs, every key verifies, which is how keys rotate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from mailflow.clock import Clock, system_clock

SALE_ACTION = "mailflow.sale-action.v1"
SELLER_LOGIN = "mailflow.seller-login.v1"
LINK_ACTIONS = frozenset({"accept", "refuse", "view"})


class LinkError(Exception):
    """The link cannot be used."""


class InvalidLink(LinkError):
    """Tampered with, truncated, signed with an unknown key, or made for another purpose."""


class ExpiredLink(LinkError):
    """Correctly signed but older than the allowed age; ``payload`` says what it was for."""

    def __init__(self, payload: Any) -> None:
        super().__init__("link expired")
        self.payload = payload


@dataclass(frozen=True, slots=True)
class SaleLink:
    sale_id: int
    action: str


def _signer_for(clock: Clock) -> type[TimestampSigner]:
    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock().timestamp())

    return ClockedSigner


class LinkSigner:
    def __init__(
        self,
        secret_keys: Sequence[str],
        max_age_seconds: float,
        clock: Clock = system_clock,
    ) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self.max_age_seconds = max_age_seconds
        signer = _signer_for(clock)
        keys = list(secret_keys)
        self._sale = URLSafeTimedSerializer(keys, salt=SALE_ACTION, signer=signer)
        self._login = URLSafeTimedSerializer(keys, salt=SELLER_LOGIN, signer=signer)

    def sale_token(self, sale_id: int, action: str) -> str:
        if action not in LINK_ACTIONS:
            raise ValueError(f"no link for action {action!r}")
        return self._sale.dumps({"s": sale_id, "a": action})

    def verify_sale_token(self, token: str) -> SaleLink:
        payload = self._loads(self._sale, token)
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("s"), int)
            or payload.get("a") not in LINK_ACTIONS
        ):
            raise InvalidLink("link payload is not a sale action")
        return SaleLink(sale_id=payload["s"], action=payload["a"])

    def login_token(self, seller_id: int, nonce: str) -> str:
        return self._login.dumps({"seller": seller_id, "n": nonce})

    def verify_login_token(self, token: str, max_age_seconds: float) -> tuple[int, str]:
        payload = self._loads(self._login, token, max_age_seconds)
        if not isinstance(payload, dict) or not isinstance(payload.get("seller"), int):
            raise InvalidLink("link payload is not a login")
        return payload["seller"], str(payload.get("n", ""))

    def _loads(
        self, serializer: URLSafeTimedSerializer, token: str, max_age: float | None = None
    ) -> Any:
        try:
            # itsdangerous compares the age with any number; its stubs say int.
            age_limit: Any = max_age or self.max_age_seconds
            return serializer.loads(token, max_age=age_limit)
        except SignatureExpired as exc:
            # Catch first: SignatureExpired is a BadSignature.
            try:
                payload = serializer.load_payload(exc.payload) if exc.payload else None
            except BadSignature:
                payload = None
            raise ExpiredLink(payload) from exc
        except (BadSignature, UnicodeDecodeError, ValueError) as exc:
            raise InvalidLink(str(exc)) from exc
