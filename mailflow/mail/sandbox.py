"""The sandbox admin-edited templates render in.

``ImmutableSandboxedEnvironment`` stops attribute tricks (``__class__``, ``__globals__``,
``str.format`` on internals) and mutation of the context. On top of it, a render is bounded:
string and list repetition, concatenation and powers that would build an oversized value are
refused before they run, ``range`` is capped and checks the clock on every step, and the
output is produced as a stream that stops at ``max_chars`` or at the deadline. A template that
tries to build a 10**9-character string gets a clear error; the process carries on.
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

MAX_RENDER_SECONDS = 2.0
MAX_OUTPUT_CHARS = 500_000
MAX_RANGE = 10_000


class RenderLimitExceeded(SecurityError):
    """The template went past the time or size a render may take."""


class _Budget(threading.local):
    """The deadline and size limit of the render running in this thread."""

    def __init__(self) -> None:
        self.deadline = float("inf")
        self.max_chars = MAX_OUTPUT_CHARS

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = _Budget()
        self.globals["range"] = self._range

    def _range(self, *args: int) -> Iterator[int]:
        values = range(*args)
        if len(values) > MAX_RANGE:
            raise RenderLimitExceeded(f"range() is limited to {MAX_RANGE} items")
        for value in values:
            self.budget.check_time()
            yield value

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        self.budget.check_time()
        limit = self.budget.max_chars
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > limit
                ):
                    raise RenderLimitExceeded(
                        f"a value of {len(seq) * times} items is over the limit of {limit}"
                    )
            return operator.mul(left, right)
        if operator_ == "+":
            if (
                isinstance(left, str | list | tuple)
                and isinstance(right, str | list | tuple)
                and len(left) + len(right) > limit
            ):
                raise RenderLimitExceeded(f"a value over the limit of {limit} items")
            return operator.add(left, right)
        # "**": refuse exponents that make huge integers.
        if isinstance(right, int) and isinstance(left, int) and abs(right) > 64:
            raise RenderLimitExceeded("exponents above 64 are not allowed")
        return operator.pow(left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        self.budget.check_time()
        return super().call(__context, __obj, *args, **kwargs)


def render_bounded(
    env: LimitedSandbox,
    template: jinja2.Template,
    context: dict[str, Any],
    *,
    seconds: float = MAX_RENDER_SECONDS,
    max_chars: int = MAX_OUTPUT_CHARS,
) -> str:
    """Render ``template`` with the time and size limits; raises RenderLimitExceeded."""
    env.budget.deadline = time.monotonic() + seconds
    env.budget.max_chars = max_chars
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > max_chars:
                raise RenderLimitExceeded(f"the output is over the limit of {max_chars} characters")
            env.budget.check_time()
            chunks.append(chunk)
    finally:
        env.budget.deadline = float("inf")
    return "".join(chunks)
