"""Sale states and the transitions between them (docs/states.md#states-and-transitions).

```
pending ──accept──▶ accepted ──ship──▶ shipped
   │                   ├──cancel──▶ cancelled
   │                   └──withdraw─▶ withdrawn
   ├──refuse──▶ refused
   ├──expire──▶ expired
   └──withdraw─▶ withdrawn
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class SaleStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class Action(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    SHIP = "ship"
    CANCEL = "cancel"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"


class Actor(StrEnum):
    SELLER = "seller"
    BUYER = "buyer"
    SUPPORT = "support"
    SYSTEM = "system"
    API = "api"


class Channel(StrEnum):
    EMAIL_LINK = "email-link"
    EMAIL_REPLY = "email-reply"
    PORTAL = "portal"
    API = "api"
    CLI = "cli"
    SWEEP = "sweep"


class Reason(StrEnum):
    """Why a seller refuses or cancels a sale."""

    OUT_OF_STOCK = "out_of_stock"
    CANNOT_SHIP = "cannot_ship"
    PRICING_ERROR = "pricing_error"
    OTHER = "other"


DEFAULT_REASON = Reason.OUT_OF_STOCK
MAX_MESSAGE_LENGTH = 2000

_RULES: dict[Action, tuple[frozenset[SaleStatus], SaleStatus]] = {
    Action.ACCEPT: (frozenset({SaleStatus.PENDING}), SaleStatus.ACCEPTED),
    Action.REFUSE: (frozenset({SaleStatus.PENDING}), SaleStatus.REFUSED),
    Action.EXPIRE: (frozenset({SaleStatus.PENDING}), SaleStatus.EXPIRED),
    Action.SHIP: (frozenset({SaleStatus.ACCEPTED}), SaleStatus.SHIPPED),
    Action.CANCEL: (frozenset({SaleStatus.ACCEPTED}), SaleStatus.CANCELLED),
    Action.WITHDRAW: (
        frozenset({SaleStatus.PENDING, SaleStatus.ACCEPTED}),
        SaleStatus.WITHDRAWN,
    ),
}


def hint_code(action: Action, status: SaleStatus) -> str:
    """The code of what to do instead when ``action`` is impossible from ``status``
    (``cancel.pending``): the services return it, the edges put it into words."""
    return f"{action.value}.{status.value}"


class SaleError(Exception):
    """Base of the errors a transition can raise."""


class AlreadyDone(SaleError):
    """The sale is already where the action leads: answered as success, nothing is sent."""

    def __init__(self, action: Action, status: SaleStatus) -> None:
        super().__init__(f"the sale is already {status}")
        self.action = action
        self.status = status


class IllegalTransition(SaleError):
    """The action is impossible from the sale's current state."""

    def __init__(self, action: Action, status: SaleStatus) -> None:
        super().__init__(f"cannot {action} a sale that is {status}")
        self.action = action
        self.status = status


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    source: SaleStatus
    target: SaleStatus


def target_of(action: Action) -> SaleStatus:
    return _RULES[action][1]


def sources_of(action: Action) -> frozenset[SaleStatus]:
    return _RULES[action][0]


def plan(action: Action, current: SaleStatus) -> Transition:
    """The transition ``action`` makes from ``current``.

    Raises AlreadyDone when the sale is already in the action's target state, and
    IllegalTransition when the action is impossible from ``current``.
    """
    sources, target = _RULES[action]
    if current in sources:
        return Transition(action, current, target)
    if current == target:
        raise AlreadyDone(action, current)
    raise IllegalTransition(action, current)


def allowed_actions(current: SaleStatus) -> list[Action]:
    """The actions possible from ``current``, in a stable order."""
    return [action for action, (sources, _) in _RULES.items() if current in sources]


def deadline_of(created_at: datetime, acceptance_hours: float) -> datetime:
    """When a pending sale made at ``created_at`` expires."""
    return created_at + timedelta(hours=acceptance_hours)


def reason_required(action: Action) -> bool:
    return action in (Action.REFUSE, Action.CANCEL)
