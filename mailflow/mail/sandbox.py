"""The sandbox admin-edited templates render in.

``ImmutableSandboxedEnvironment`` stops attribute tricks (``__class__``, ``__globals__``,
``str.format`` on internals) and mutation of the context. On top of it, a render is bounded:
string and list repetition, concatenation and powers that would build an oversized value are
refused before they run, ``range`` is capped and checks the clock on every step, and the
output is produced as a stream that stops at ``max_chars`` or at the deadline. A template that
tries to build a 10**9-character string gets a clear error; the process carries on.

A render also pauses for a tenth of a millisecond every 2 ms, where it checks the clock: the
process's other threads (the server answering other requests) get the interpreter then instead
of waiting for Python's forced switch, about 5 ms of a busy render each time they need it.
"""

from __future__ import annotations

import operator
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2 import filters as jinja_filters
from jinja2 import nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RENDER_SECONDS = 2.0
MAX_OUTPUT_CHARS = 500_000
MAX_RANGE = 10_000
MAX_CALL_DEPTH = 50
YIELD_EVERY = 0.002
"""A render pauses this often (seconds of its time) …"""
YIELD_PAUSE = 0.0001
"""… this long, for the other threads of the process (the server's requests) to run."""


class RenderLimitExceeded(SecurityError):
    """The template went past the time or size a render may take."""


class _Budget(threading.local):
    """The deadline and size limit of the render running in this thread."""

    def __init__(self) -> None:
        self.deadline = float("inf")
        self.max_chars = MAX_OUTPUT_CHARS
        self.depth = 0
        self.next_yield = 0.0

    def check_time(self) -> None:
        now = time.monotonic()
        if now > self.deadline:
            raise RenderLimitExceeded(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")
        if now >= self.next_yield:
            # Let the process's other threads (the server's requests) have the interpreter
            # now rather than at Python's next forced switch, which a busy render delays.
            time.sleep(YIELD_PAUSE)
            self.next_yield = time.monotonic() + YIELD_EVERY


# A width or precision this long in a format spec ("%050000000d", "{:>50000000}") is refused.
_WIDE_FORMAT = re.compile(r"(?:%[-#0 +]*|\{[^{}]*:[^{}]*?)(\d{6,})")


_PADDING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class _BoundedCodegen(CodeGenerator):
    """Compiles ``a ~ b`` through the sandbox, which checks the joined size first."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.bounded_concat({func_name}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _shown(value: Any) -> Any:
    """What ``{{ … }}`` may print: a value, not a function or an object whose only text is
    Python's ``<… object at 0x…>`` (``{{ cycler }}``, ``{{ lipsum }}``, ``{{ cycler(1, 2) }}``),
    which would leak the process's memory addresses into an email."""
    if isinstance(value, jinja2.Undefined):
        return value  # it raises its own error ("… is undefined", "unsafe") when printed
    own_text = any("__str__" in vars(k) or "__repr__" in vars(k) for k in type(value).__mro__[:-1])
    if callable(value) or not own_text:
        raise TemplateRuntimeError(
            "a function or an object cannot be shown as text: call it or show one of its values"
        )
    return value


class LimitedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodegen

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("finalize", _shown)
        super().__init__(*args, **kwargs)
        self.budget = _Budget()
        self.globals["range"] = self._range
        self.globals["lipsum"] = self._lipsum
        for name in ("center", "indent", "wordwrap", "truncate", "format"):
            self.filters[name] = self._bounded_filter(self.filters[name])
        self.filters["join"] = self._join
        self.filters["replace"] = self._replace

    def _too_big(self, size: int) -> None:
        if size > self.budget.max_chars:
            raise RenderLimitExceeded(
                f"a value of {size} characters is over the limit of {self.budget.max_chars}"
            )

    def _bounded_filter(self, function: Any) -> Any:
        """A filter refusing width arguments or format strings that would blow the size up."""

        def bounded(*args: Any, **kwargs: Any) -> Any:
            values = [*args, *kwargs.values()]
            if any(isinstance(v, int) and v > self.budget.max_chars for v in values) or any(
                isinstance(v, str) and _WIDE_FORMAT.search(v) for v in values
            ):
                raise RenderLimitExceeded("a width that large is over the size limit")
            return function(*args, **kwargs)

        for marker in ("jinja_pass_arg",):
            if hasattr(function, marker):
                setattr(bounded, marker, getattr(function, marker))
        return bounded

    def wrap_str_format(self, value: Any) -> Any:
        """``str.format`` / ``format_map``, refusing widths that would blow the size up."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None or not _WIDE_FORMAT.search(value.__self__):
            return wrapped

        def refused(*args: Any, **kwargs: Any) -> str:
            raise RenderLimitExceeded("a format width of 100000 or more is over the size limit")

        return refused

    def bounded_concat(self, join: Any, items: tuple[Any, ...]) -> Any:
        self.budget.check_time()
        self._too_big(sum(len(str(item)) for item in items))
        return join(items)

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if n > 10 or max > 200 or min > max:
            raise RenderLimitExceeded("lipsum() is limited to 10 paragraphs of 200 words")
        from jinja2.utils import generate_lorem_ipsum

        return generate_lorem_ipsum(n, html, min, max)

    @pass_eval_context
    def _join(self, eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        self._too_big(sum(len(str(i)) for i in items) + len(str(d)) * max(len(items) - 1, 0))
        return jinja_filters.do_join(eval_ctx, items, d, attribute)

    @pass_eval_context
    def _replace(self, eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
        text, old_s, new_s = str(s), str(old), str(new)
        hits = text.count(old_s) if old_s else len(text) + 1
        if count is not None:
            hits = min(hits, int(count))
        self._too_big(len(text) + hits * max(len(new_s) - len(old_s), 0))
        return jinja_filters.do_replace(eval_ctx, s, old, new, count)

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
        if operator_ == "%":
            if isinstance(left, str) and _WIDE_FORMAT.search(left):
                raise RenderLimitExceeded("a format width of 100000 or more is over the size limit")
            return operator.mod(left, right)
        # "**": refuse powers whose result would be a huge integer.
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            self._too_big(right * max(abs(left).bit_length(), 1) // 3)
        return operator.pow(left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        self.budget.check_time()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        wide = isinstance(owner, str) and (
            (name in ("format", "format_map") and _WIDE_FORMAT.search(owner) is not None)
            or (
                name in _PADDING
                and any(isinstance(a, int) and a > self.budget.max_chars for a in args)
            )
        )
        if wide:
            raise RenderLimitExceeded(f"str.{name} with a width that large is over the size limit")
        # Bound nesting (a macro calling itself) well before Python's recursion limit, whose
        # thousand-frame traceback alone takes seconds to unwind and rewrite.
        if self.budget.depth >= MAX_CALL_DEPTH:
            raise RenderLimitExceeded(
                f"calls nested more than {MAX_CALL_DEPTH} deep: over the limit"
            )
        self.budget.depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            self.budget.depth -= 1


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
