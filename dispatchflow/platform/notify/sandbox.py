"""A Jinja2 sandbox that also bounds time and memory, for authors' notification templates.

Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` blocks dunder and internal
attributes but lets a template loop for ever or build a gigabyte string. A
:class:`GuardedEnvironment` (built on the immutable sandbox: templates cannot
mutate lists or dicts either) adds, for every render run under :func:`limits`:

* **A time limit** on the CPU time of the rendering thread (``time.thread_time``:
  waiting for the database or a busy machine does not count), around the whole
  render. No signals, so it works in any thread: every loop's iterable is
  wrapped, at parse time, in a guard that checks the deadline on each item, and
  the sandbox's hooks (calls, attribute and item reads, the ``* ** + %``
  operators, filters, ``~``, block joins) check it too. Loops are the only way a
  template of bounded size runs long (macro recursion goes through calls), so a
  runaway template stops within one item's work of the deadline. ``range`` is
  capped at 100 000 items by Jinja already.
* **A size cap** on what printing a value would take (:func:`printed_size`: a list
  of references to one long string counts every copy), checked *before* the work
  where it could explode (``'x' * n``, ``'%99999d' % 1``, ``'{:>99999}'.format(1)``,
  ``center``/``indent`` widths, ``replace``, ``join``, any argument of a call or
  filter) and after every call, filter, operator and join.
* **A smaller surface**: no ``lipsum``, no ``safe`` filter, so record values
  are always escaped in HTML, and no ``urlize`` (quadratic inside ``re``: 20 000
  dots took 14 s in one call that no deadline check could interrupt).
* **A watchdog** (:mod:`.watchdog`) for the time between two checks: a single
  long call is interrupted once the thread's CPU time passes the budget. Single C
  calls cannot be interrupted, so record values are capped when a template reads
  them (``defaults.NOTIFY_FIELD_MAX_CHARS``, see :mod:`.templates`) and built
  values by the size cap above.

:class:`RenderLimitExceeded` reports either limit. Limits outside a
:func:`limits` block are the size caps only (e.g. while parsing).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from string import Formatter
from typing import Any

from jinja2 import Environment, nodes
from jinja2.filters import FILTERS
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import pass_eval_context
from jinja2.visitor import NodeTransformer

from .. import defaults
from .watchdog import WATCHDOG, RenderInterrupted

#: Name of the filter that guards loop iterables and of the one that joins ``~`` operands.
GUARD_FILTER = "df_guard_iter"
CONCAT_FILTER = "df_concat"

#: Filters authors may use: Jinja's text and list filters, without ``safe`` (record
#: values stay escaped in HTML), those that reach outside the values given, and
#: ``urlize`` (one call on a long value ran for seconds inside the regex engine).
ALLOWED_FILTERS = frozenset({
    "abs", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby",
    "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
    "min", "reject", "rejectattr", "replace", "reverse", "round", "select",
    "selectattr", "slice", "sort", "string", "striptags", "sum", "title", "trim",
    "truncate", "unique", "upper", "urlencode", "wordcount", "wordwrap", "attr",
})

#: Globals left to templates (``lipsum``, which writes text of any length, is removed).
ALLOWED_GLOBALS = frozenset({"range", "dict", "namespace", "cycler", "joiner"})

#: String methods whose integer arguments are output widths.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")

_state = threading.local()


class RenderLimitExceeded(SecurityError):
    """A template ran past its time limit or built a value past the size cap."""


@contextmanager
def limits(timeout: float, max_chars: int, *, since: float | None = None) -> Iterator[None]:
    """Apply a deadline of ``timeout`` CPU seconds and a size cap to renders in this block.

    The budget counts from ``since`` (a ``time.thread_time()`` reading, default
    now), so several blocks can share one. Per thread, so worker threads rendering
    at once do not share deadlines. The deadline is checked by the sandbox's hooks
    and, for one long call between them, enforced by the :mod:`.watchdog`; either
    raises RenderLimitExceeded.
    """
    previous = getattr(_state, "limits", None)
    now = time.thread_time()
    deadline = (now if since is None else since) + timeout
    _state.limits = (deadline, timeout, max_chars)
    # A little after the hooks' own deadline, so that they report it when they can.
    watch = WATCHDOG.arm(deadline - now + defaults.NOTIFY_WATCHDOG_POLL)
    try:
        try:
            yield
        finally:
            WATCHDOG.disarm(watch)
    except RenderInterrupted:
        WATCHDOG.disarm(watch)  # it may have arrived during the first disarm
        raise RenderLimitExceeded(_overrun(timeout)) from None
    finally:
        _state.limits = previous


def _overrun(timeout: float) -> str:
    return f"the template ran longer than {timeout:g} s of CPU time (the render time limit)"


def _max_chars() -> int:
    current = getattr(_state, "limits", None)
    return current[2] if current else defaults.NOTIFY_OUTPUT_MAX_CHARS


def tick() -> None:
    """Raise RenderLimitExceeded when the current render's deadline has passed."""
    current = getattr(_state, "limits", None)
    if current is not None and time.thread_time() > current[0]:
        raise RenderLimitExceeded(_overrun(current[1]))


def printed_size(value: Any, budget: int) -> int:
    """About how many characters ``str(value)`` has, counted no further than past ``budget``.

    Containers are walked (a list of 60 000 references to one 60 000-character
    string prints 3.6 billion characters though it holds little memory); the walk
    stops as soon as the count passes ``budget``, so it costs at most that much.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            if total <= budget:
                stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= budget:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 2
        else:
            total += 24  # numbers, dates, records: short when printed
        if total > budget:
            break
    return total


def check_size(value: Any) -> Any:
    """``value`` itself, unless printing it would take more than the size cap."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        cap = _max_chars()
        size = len(value) if isinstance(value, str | bytes) else printed_size(value, cap)
        if size > cap:
            raise RenderLimitExceeded(f"the template built a value of {size} characters or "
                                      f"more; at most {cap} are allowed")
    return value


def check_args(args: Iterable[Any]) -> None:
    """Refuse arguments that would print past the size cap (before a call converts them)."""
    for arg in args:
        check_size(arg)


def _check_width(n: Any, what: str) -> None:
    if isinstance(n, int) and not isinstance(n, bool) and abs(n) > _max_chars():
        raise RenderLimitExceeded(f"{what} {n} is larger than the size cap ({_max_chars()})")


def _check_grows(base: int, copies: int, size: int) -> None:
    """Refuse an operation making ``copies`` copies of ``size`` characters plus ``base``."""
    total = base + copies * size
    if total > _max_chars():
        raise RenderLimitExceeded(f"the template would build a value of {total} characters; "
                                  f"at most {_max_chars()} are allowed")


def _check_percent_format(fmt: str, args: Any) -> None:
    specs = list(_PERCENT_SPEC.finditer(fmt))
    for match in specs:
        for group in match.groups():
            if group == "*":
                raise RenderLimitExceeded("'%*' formats (a width taken from the arguments) "
                                          "are not allowed in templates")
            if group is not None:
                _check_width(int(group), "a format width of")
    _check_grows(len(fmt), len(specs), printed_size(args, _max_chars()))


def _check_brace_format(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        parsed = list(Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    fields = 0
    for _literal, field_name, spec, _conversion in parsed:
        fields += field_name is not None
        if not spec:
            continue
        if "{" in spec:
            raise RenderLimitExceeded("nested format fields (a width taken from the arguments) "
                                      "are not allowed in templates")
        for number in _NUMBER.findall(spec):
            _check_width(int(number), "a format width of")
    largest = max((printed_size(a, _max_chars()) for a in (*args, *kwargs.values())),
                  default=0)
    _check_grows(len(fmt), fields, largest)


def _check_replace(text: Any, old: Any, new: Any) -> None:
    text, old, new = str(text), str(old), str(new)
    copies = len(text) + 1 if not old else text.count(old)
    _check_grows(len(text), copies, max(len(new) - len(old), 0))


def _check_join(separator: str, items: Any) -> list[Any]:
    """The items of a join as a list, refused when the joined text would pass the cap."""
    listed = list(items)
    _check_grows(printed_size(listed, _max_chars()), len(listed), len(separator))
    return listed


def guard_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """Yield the items of a loop's iterable, checking the deadline before each."""
    tick()
    for item in iterable:
        tick()
        yield item


@pass_eval_context
def guarded_concat(eval_ctx: Any, parts: list[Any]) -> str:
    """The ``~`` operator: the operands joined as text, refused past the size cap."""
    tick()
    check_size(parts)
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _guarded_join(parts: Iterable[str]) -> str:
    """Join a block's output buffer (``{% set %}`` blocks, macros, ``caller()``)."""
    tick()
    items = list(parts)
    total = sum(len(p) for p in items)
    if total > _max_chars():
        raise RenderLimitExceeded(f"the template produced {total} characters in one block; "
                                  f"at most {_max_chars()} are allowed")
    return "".join(items)


#: Filters whose integer arguments are widths, lengths or counts.
_SIZED_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "slice", "batch"})


def _guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` checking the deadline, its arguments and the size of its result."""
    @wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        values = [a for a in args if not isinstance(a, Context | EvalContext | Environment)]
        check_args((*values, *kwargs.values()))
        if name in _SIZED_FILTERS:
            for value in (*values[1:], *kwargs.values()):
                _check_width(value, f"the argument of '{name}'")
        elif name == "replace" and len(values) >= 3:
            _check_replace(values[0], values[1], values[2])
        elif name == "format" and values and isinstance(values[0], str):
            _check_percent_format(values[0], (*values[1:], *kwargs.values()))
        elif name == "join" and values:
            separator = values[1] if len(values) > 1 else kwargs.get("d", "")
            first = len(args) - len(values)  # after the context Jinja passes first
            args = (*args[:first], _check_join(str(separator), values[0]), *args[first + 1:])
        return check_size(fn(*args, **kwargs))
    return guarded


class _LoopGuard(NodeTransformer):
    """Wraps every ``for`` iterable in the guard filter and every ``~`` in the join filter."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, GUARD_FILTER, [], [], None, None,
                                 lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(nodes.List(list(node.nodes), lineno=node.lineno), CONCAT_FILTER,
                            [], [], None, None, lineno=node.lineno)


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with time and size limits (see module docs)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_guarded_join)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guard_filter(name, fn) for name, fn in FILTERS.items()
                        if name in ALLOWED_FILTERS}
        self.filters[GUARD_FILTER] = guard_iter
        self.filters[CONCAT_FILTER] = guarded_concat
        self.globals = {k: v for k, v in self.globals.items() if k in ALLOWED_GLOBALS}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        guarded = _LoopGuard().visit(tree)
        assert isinstance(guarded, nodes.Template)
        return guarded

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        tick()
        if operator_ == "*":
            _check_multiply(left, right)
        elif operator_ == "**":
            _check_power(left, right)
        elif operator_ == "%" and isinstance(left, str):
            _check_percent_format(left, right)
        return check_size(self.binop_table[operator_](left, right))

    def call(__self, __context: Context, __obj: Any,  # noqa: N805 - Jinja's own signature
             *args: Any, **kwargs: Any) -> Any:
        tick()
        check_args((*args, *kwargs.values()))
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name in _WIDTH_METHODS:
                for value in (*args, *kwargs.values()):
                    _check_width(value, f"the argument of '{name}'")
            elif name == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
            elif name == "join" and args:
                args = (_check_join(owner, args[0]), *args[1:])
        return check_size(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__
        inner = wrapped
        is_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            if is_map and len(args) == 1 and isinstance(args[0], dict):
                _check_brace_format(fmt, (), args[0])
            else:
                _check_brace_format(fmt, args, kwargs)
            return str(check_size(inner(*args, **kwargs)))
        return checked


def _check_multiply(left: Any, right: Any) -> None:
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple | bytes) and isinstance(n, int):
            _check_grows(0, max(n, 0), printed_size(seq, _max_chars()))
            return
    if isinstance(left, int) and isinstance(right, int) and \
            left.bit_length() + right.bit_length() > 4096:
        raise RenderLimitExceeded("the template multiplies numbers too large to print")


def _check_power(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and \
            right * left.bit_length() > 4096:
        raise RenderLimitExceeded("the template raises a number to a power too large to print")

