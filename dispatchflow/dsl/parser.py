"""Parse DSL text into AST nodes, reporting syntax errors as diagnostics.

One LALR parser is built from ``grammar.lark`` on first use and shared (never
mutated). Its tables are cached in an app-owned directory. Syntax errors become
E2001-E2003 diagnostics with the position, what was expected in words, and a
hint for the common slips (``=`` for ``==``, ``&&``, full-width punctuation,
unterminated strings). A ``.rules`` file resumes after an error at the next
top-level block, so one run reports a problem in each broken block.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from pathlib import Path as FsPath

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .diagnostics import DiagnosticBag
from .source import Origin, SourceFile, Span

_START = ["expression", "rules_file", "cell"]

_FULL_WIDTH = {
    "，": ",", "（": "(", "）": ")", "“": '"', "”": '"', "‘": "'", "’": "'", "：": ":",
    "＝": "=", "；": ";", "【": "[", "】": "]", "＞": ">", "＜": "<", "！": "!", "。": ".",
}

_KEYWORD_TOKENS = {"then", "else", "and", "or", "when", "set", "rule", "ruleset", "as"}


def _cache_path() -> str | None:
    base = os.environ.get("DISPATCHFLOW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "dispatchflow")
    try:
        FsPath(base).mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return os.path.join(base, "grammar.lalr.cache")


@cache
def get_parser() -> Lark:
    """The shared LALR parser (built once per process, tables cached on disk)."""
    grammar = resources.files("dispatchflow.dsl").joinpath("grammar.lark").read_text("utf-8")
    cache_file = _cache_path()
    return Lark(grammar, parser="lalr", start=_START, propagate_positions=True,
                maybe_placeholders=False, cache=cache_file if cache_file else False)


@cache
def _terminal_display() -> dict[str, str]:
    names: dict[str, str] = {
        "NAME": "a name", "STRING": "a string", "INT": "a number", "NUMBER": "a number",
        "DURATION": "a duration", "DISTANCE": "a distance", "COMP_OP": "a comparison",
        "$END": "end of input", "DOT": "'.'", "SAFE_DOT": "'?.'", "SORT_ORDER": "'asc' or 'desc'",
    }
    for term in get_parser().terminals:
        if term.name not in names and term.pattern.type == "str":
            names[term.name] = f"'{term.pattern.value}'"
    return names


_EXPR_STARTERS = {"NAME", "STRING", "INT", "NUMBER", "DURATION", "DISTANCE", "TRUE", "FALSE",
                  "NULL", "LPAR", "LSQB", "MINUS", "NOT", "IF"}


_VALUE_TOKENS = {"NAME": "name", "STRING": "string", "INT": "number", "NUMBER": "number",
                 "DURATION": "duration", "DISTANCE": "distance"}


def _describe_expected(expected: set[str]) -> str:
    display = _terminal_display()
    names = set(expected)
    parts: list[str] = []
    if len(names & _EXPR_STARTERS) >= 5:
        parts.append("an expression")
        names -= _EXPR_STARTERS
    # Operators that could continue an expression are noise in "expected" lists.
    continuing = {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "COMP_OP", "AND", "OR", "IN",
                  "NOT", "CONTAINS", "MATCHES", "IS", "DOT", "SAFE_DOT", "LPAR"}
    if len(names & continuing) >= 4:
        names -= continuing
        parts.append("an operator")
    parts.extend(sorted(display.get(n, n) for n in names))
    if not parts:
        return "something else"
    if len(parts) > 8:
        parts = parts[:7] + [f"{len(parts) - 7} more"]
    return ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1]


class SyntaxProblem(Exception):
    """Internal: a syntax error already mapped to code, message, position and hint."""

    def __init__(self, code: str, message: str, line: int, column: int, width: int,
                 hint: str | None) -> None:
        super().__init__(message)
        self.code, self.message, self.line, self.column = code, message, line, column
        self.width, self.hint = width, hint


def _accepted(exc: UnexpectedToken) -> set[str]:
    """Exactly the tokens the parser would accept here (LALR's ``expected`` over-reports)."""
    ip = getattr(exc, "interactive_parser", None)
    if ip is not None:
        try:
            return set(ip.accepts())
        except Exception:  # noqa: BLE001 - fall back to Lark's coarser set
            pass
    return set(exc.expected)


def _explain(exc: UnexpectedInput, text: str) -> SyntaxProblem:
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        hint = None
        if ch in _FULL_WIDTH:
            hint = f"full-width '{ch}' is not allowed here; use '{_FULL_WIDTH[ch]}'"
        elif ch in "\"'":
            hint = f"the string is not closed: end it with {ch} on the same line"
        elif ch == "&":
            hint = "use 'and' to combine conditions"
        elif ch == "|":
            hint = "use 'or' to combine conditions"
        elif ch == "!":
            hint = "use 'not' to negate, '!=' to compare"
        elif ch.isalpha() and not ch.isascii():
            hint = "names are ASCII (letters, digits, _); put other text in quotes"
        return SyntaxProblem("E2002", f"unexpected character '{ch}'", exc.line, exc.column, 1,
                             hint)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        tok = exc.token
        expected = _accepted(exc)
        what = _describe_expected(expected)
        hint = None
        if tok.value == "=" and "COMP_OP" in expected:
            hint = "use '==' to compare; '=' only appears in 'set field = value'"
        elif tok.value == "=":
            hint = "'=' only appears in 'set field = value'"
        elif tok.type == "COMP_OP":
            hint = "comparisons cannot be chained: write a < b and b < c"
        elif tok.type in _VALUE_TOKENS and "COMP_OP" in expected:
            hint = "two values in a row: is an operator or a comma missing?"
        elif tok.value == "salience":
            hint = "salience comes right after the rule's name: rule \"name\" salience 10 when ..."
        elif "THEN" in expected and tok.value not in ("then",):
            hint = "a rule reads: rule \"name\" when <condition> then <actions>"
        elif tok.value in _KEYWORD_TOKENS and expected & _EXPR_STARTERS:
            hint = f"'{tok.value}' is a keyword; an expression is missing before it"
        elif tok.value == "rule" and "RULESET" in expected:
            hint = "a rule belongs to a ruleset: start one with 'ruleset NAME on entity.event'"
        elif expected <= {"RULESET", "DISPATCH"} or expected == {"RULESET", "DISPATCH", "RULE"}:
            hint = "a .rules file holds 'ruleset ... on entity.event' and 'dispatch policy' blocks"
        width = max(1, len(str(tok.value)))
        noun = _VALUE_TOKENS.get(tok.type)
        message = (f"unexpected {noun} '{tok.value}', expected {what}" if noun
                   else f"unexpected '{tok.value}', expected {what}")
        return SyntaxProblem("E2001", message, tok.line, tok.column, width, hint)
    expected = _accepted(exc) if isinstance(exc, UnexpectedToken) else \
        set(getattr(exc, "expected", None) or [])
    lines = text.split("\n")
    # Point just after the last text, not at a blank line at the end of the file.
    line = len(lines)
    while line > 1 and not lines[line - 1].strip():
        line -= 1
    column = len(lines[line - 1].rstrip()) + 1
    return SyntaxProblem("E2003",
                         f"unexpected end of input, expected {_describe_expected(expected)}",
                         line, column, 1, "the text stops in the middle; finish it")


def _parse(text: str, start: str) -> Tree:
    try:
        return get_parser().parse(text, start=start)
    except (UnexpectedToken, UnexpectedCharacters, UnexpectedEOF) as exc:
        raise _explain(exc, text) from exc


def _report(problem: SyntaxProblem, origin: Origin, bag: DiagnosticBag) -> None:
    line, col = origin.map(problem.line, problem.column)
    bag.error(problem.code, problem.message, origin.file,
              Span(line, col, line, col + problem.width), problem.hint)


# ------------------------------------------------------------------ public API


def parse_expression(text: str, origin: Origin, bag: DiagnosticBag) -> ast.Expr | None:
    """Parse one expression (e.g. a YAML value); None after reporting a syntax error."""
    try:
        tree = _parse(text, "expression")
    except SyntaxProblem as problem:
        _report(problem, origin, bag)
        return None
    return _Builder(origin, text).expr(tree.children[0])


def parse_cell(text: str, origin: Origin, bag: DiagnosticBag) -> ast.Cell | None:
    """Parse a decision-table cell (``-``, ``"P1", "P2"``, ``< 5``, ``[1..5)``, ``not(...)``)."""
    try:
        tree = _parse(text, "cell")
    except SyntaxProblem as problem:
        problem.code = "E5006" if problem.code != "E2002" else problem.code
        _report(problem, origin, bag)
        return None
    return _Builder(origin, text).cell(tree)


_TOP_LEVEL = re.compile(r"^\s*(ruleset\b|dispatch\s+policy\b)")


def parse_rules_file(source: SourceFile, bag: DiagnosticBag) -> ast.RulesFile:
    """Parse a ``.rules`` file; after a syntax error, resume at the next top-level block."""
    bag.add_source(source)
    origin = Origin(source.path)
    rulesets: list[ast.RulesetDecl] = []
    policies: list[ast.PolicyDecl] = []
    lines = source.text.split("\n")
    skip_to = 0  # lines before this index are blanked (keeps positions right)
    while True:
        text = "\n" * skip_to + "\n".join(lines[skip_to:])
        builder = _Builder(origin, text)
        try:
            tree = _parse(text, "rules_file")
        except SyntaxProblem as problem:
            _report(problem, origin, bag)
            nxt = next((i for i in range(max(problem.line, skip_to + 1), len(lines))
                        if _TOP_LEVEL.match(lines[i])), None)
            # Keep what parses before the error: re-parse the prefix up to the error block.
            prefix_end = _block_start(lines, problem.line - 1)
            if prefix_end > skip_to:
                _parse_prefix(lines, skip_to, prefix_end, origin, rulesets, policies)
            if nxt is None:
                break
            skip_to = nxt
            continue
        _collect(tree, builder, rulesets, policies)
        break
    return ast.RulesFile(source.path, tuple(rulesets), tuple(policies))


def _collect(tree: Tree, builder: _Builder, rulesets: list[ast.RulesetDecl],
             policies: list[ast.PolicyDecl]) -> None:
    for item in tree.children:
        if item.data == "ruleset":
            rulesets.append(builder.ruleset(item, builder.origin.file))
        else:
            policies.append(builder.policy(item, builder.origin.file))


def _block_start(lines: list[str], index: int) -> int:
    for i in range(min(index, len(lines) - 1), -1, -1):
        if _TOP_LEVEL.match(lines[i]):
            return i
    return 0


def _parse_prefix(lines: list[str], start: int, end: int, origin: Origin,
                  rulesets: list, policies: list) -> None:
    text = "\n" * start + "\n".join(lines[start:end])
    builder = _Builder(origin, text)
    try:
        tree = _parse(text, "rules_file")
    except SyntaxProblem:
        return
    _collect(tree, builder, rulesets, policies)


# ------------------------------------------------------------------ tree -> AST

_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%",
           "and_expr": "and", "or_expr": "or"}
_COMPARE = {"in_expr": "in", "not_in_expr": "not in", "contains_expr": "contains",
            "matches_expr": "matches"}
_RANGES = {"range_closed": (True, True), "range_closed_open": (True, False),
           "range_open_closed": (False, True), "range_open": (False, False)}


def _unquote(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Builder:
    """Turns Lark trees into AST nodes, mapping positions through an Origin."""

    def __init__(self, origin: Origin, text: str = "") -> None:
        self.origin = origin
        self.text = text

    def span(self, item: Tree | Token) -> Span:
        if isinstance(item, Token):
            return self.origin.span(item.line or 1, item.column or 1, item.end_line or 1,
                                    item.end_column or 1)
        meta = item.meta
        if getattr(meta, "empty", True):
            return Span(self.origin.line, self.origin.column, self.origin.line, self.origin.column)
        return self.origin.span(meta.line, meta.column, meta.end_line, meta.end_column)

    # -- expressions
    def expr(self, t: Tree | Token) -> ast.Expr:
        if isinstance(t, Token):  # a bare NAME never reaches here; defensive
            return ast.Path(self.span(t), root=str(t), root_span=self.span(t), steps=())
        kind = t.data
        span = self.span(t)
        c = t.children
        if kind == "number":
            text = str(c[0])
            value: object = float(text) if any(ch in text for ch in ".eE") else int(text)
            return ast.Literal(span, kind="number", value=value)
        if kind == "string":
            return ast.Literal(span, kind="string", value=_unquote(str(c[0])))
        if kind == "duration":
            return ast.Literal(span, kind="duration", value=ast.parse_duration(str(c[0])))
        if kind == "distance":
            return ast.Literal(span, kind="distance", value=float(str(c[0])[:-2]))
        if kind in ("true", "false"):
            return ast.Literal(span, kind="bool", value=kind == "true")
        if kind == "null":
            return ast.Literal(span, kind="null", value=None)
        if kind == "path":
            return self.path(t)
        if kind == "call":
            name = c[0]
            return ast.Call(span, name=str(name), name_span=self.span(name),
                            args=tuple(self.expr(a) for a in c[1:]))
        if kind == "list":
            return ast.ListLit(span, items=tuple(self.expr(a) for a in c))
        if kind == "neg":
            operand = self.expr(c[0])
            if isinstance(operand, ast.Literal) and operand.kind in ("number", "distance"):
                return ast.Literal(span, kind=operand.kind, value=-operand.value)
            if isinstance(operand, ast.Literal) and operand.kind == "duration":
                return ast.Literal(span, kind="duration", value=-operand.value)
            return ast.Unary(span, op="neg", operand=operand)
        if kind == "not_expr":
            return ast.Unary(span, op="not", operand=self.expr(c[0]))
        if kind in _BINARY:
            return ast.Binary(span, op=_BINARY[kind], left=self.expr(c[0]), right=self.expr(c[1]))
        if kind == "compare":
            return ast.Compare(span, op=str(c[1]), left=self.expr(c[0]), right=self.expr(c[2]))
        if kind in _COMPARE:
            return ast.Compare(span, op=_COMPARE[kind], left=self.expr(c[0]),
                               right=self.expr(c[1]))
        if kind in ("is_null", "is_not_null"):
            return ast.IsNull(span, operand=self.expr(c[0]), negated=kind == "is_not_null")
        if kind == "if_expr":
            return ast.IfExpr(span, cond=self.expr(c[0]), then=self.expr(c[1]),
                              otherwise=self.expr(c[2]))
        if kind == "expression":
            return self.expr(c[0])
        raise AssertionError(f"unhandled tree {kind}")

    def path(self, t: Tree) -> ast.Path:
        root = t.children[0]
        steps = []
        rest = t.children[1:]
        for dot, name in zip(rest[0::2], rest[1::2], strict=True):
            is_safe = isinstance(dot, Token) and dot.type == "SAFE_DOT"
            steps.append(ast.PathStep(str(name), is_safe, self.span(name)))
        return ast.Path(self.span(t), root=str(root), root_span=self.span(root),
                        steps=tuple(steps))

    # -- cells
    def cell(self, t: Tree) -> ast.Cell:
        span = self.span(t)
        if t.data == "any_cell":
            return ast.Cell((), any=True, span=span)
        return ast.Cell(tuple(self.cell_test(c) for c in t.children),
                        negated=t.data == "not_cell", span=span)

    def cell_test(self, t: Tree) -> ast.CellTest:
        if t.data == "eq_test":
            return ast.CellTest("==", value=self.expr(t.children[0]))
        if t.data == "cmp_test":
            return ast.CellTest(str(t.children[0]), value=self.expr(t.children[1]))
        if t.data in _RANGES:
            lo, hi = _RANGES[t.data]
            return ast.CellTest("range", low=self.expr(t.children[0]),
                                high=self.expr(t.children[1]), low_closed=lo, high_closed=hi)
        raise AssertionError(t.data)

    # -- rules files
    def ruleset(self, t: Tree, file: str) -> ast.RulesetDecl:
        name, ent, event, *rest = t.children
        hit, hit_span = "all", None
        rules = []
        for item in rest:
            if item.data == "hit_clause":
                hit, hit_span = str(item.children[0]), self.span(item.children[0])
            else:
                rules.append(self.rule(item))
        return ast.RulesetDecl(str(name), str(ent), str(event), hit, tuple(rules), file,
                               self.span(t), self.span(ent), hit_span)

    def rule(self, t: Tree) -> ast.RuleDecl:
        name_tok, *rest = t.children
        salience = 0
        if isinstance(rest[0], Tree) and rest[0].data in ("salience", "negative_salience"):
            sal = rest.pop(0)
            salience = int(str(sal.children[0])) * (-1 if sal.data == "negative_salience" else 1)
        condition = self.expr(rest[0])
        actions = tuple(self.action(a) for a in rest[1:])
        return ast.RuleDecl(_unquote(str(name_tok)), salience, condition, actions,
                            self.span(t), self.span(name_tok))

    def action(self, t: Tree) -> ast.Action:
        span, c = self.span(t), t.children
        if t.data == "set_action":
            return ast.SetAction(self.path(c[0]), self.expr(c[1]), span)
        if t.data in ("tag_action", "untag_action"):
            return ast.TagAction(str(c[0]), _unquote(str(c[1])), t.data == "untag_action", span)
        if t.data == "emit_action":
            return ast.EmitAction(str(c[0]), str(c[1]), span)
        if t.data == "notify_action":
            return ast.NotifyAction(str(c[0]), span)
        if t.data == "start_action":
            return ast.StartFlowAction(str(c[0]), span)
        if t.data == "dispatch_action":
            return ast.DispatchAction(str(c[0]) if c else None, span)
        raise AssertionError(t.data)

    def policy(self, t: Tree, file: str) -> ast.PolicyDecl:
        name, ent, pool, *clauses = t.children
        requires: list[ast.RequireClause] = []
        scores: list[ast.ScoreClause] = []
        ties: list[ast.TiebreakClause] = []
        offer = None
        for cl in clauses:
            span = self.span(cl)
            if cl.data == "require":
                cond = self.expr(cl.children[0])
                label = _label(cl.children[1:]) or _source_label(cl.children[0], self)
                requires.append(ast.RequireClause(cond, label, span))
            elif cl.data == "score":
                value = self.expr(cl.children[0])
                guard = None
                label = None
                for extra in cl.children[1:]:
                    if extra.data == "score_guard":
                        guard = self.expr(extra.children[0])
                    else:
                        label = _label([extra])
                scores.append(ast.ScoreClause(value, guard, label or f"score {len(scores) + 1}",
                                              span))
            elif cl.data == "tiebreak":
                desc = len(cl.children) > 1 and str(cl.children[1]) == "desc"
                ties.append(ast.TiebreakClause(self.expr(cl.children[0]), desc, span))
            elif cl.data == "offer":
                offer = self.offer(cl)
        header = Span(self.span(t).line, self.span(t).column, self.span(pool).end_line,
                      self.span(pool).end_column)
        return ast.PolicyDecl(str(name), str(ent), str(pool), tuple(requires), tuple(scores),
                              tuple(ties), offer, file, self.span(t), header)

    def offer(self, t: Tree) -> ast.OfferClause:
        strategy_tree, within, *rest = t.children
        strategy = strategy_tree.data
        top_k = int(str(strategy_tree.children[0])) if strategy == "broadcast" else 1
        retries, role, role_span = 0, None, None
        for item in rest:
            if item.data == "retry":
                retries = int(str(item.children[0]))
            elif item.data == "escalate":
                tok = item.children[0]
                quoted = isinstance(tok, Token) and tok.type == "STRING"
                role = _unquote(str(tok)) if quoted else str(tok)
                role_span = self.span(tok)
        return ast.OfferClause(strategy, top_k, self.expr(within), retries, role,
                               self.span(t), role_span)


def _label(items: list) -> str | None:
    for item in items:
        if isinstance(item, Tree) and item.data == "label":
            return _unquote(str(item.children[0]))
    return None


def _source_label(tree: Tree, builder: _Builder) -> str:
    """The condition's own text, whitespace folded: the default explanation label."""
    meta = tree.meta
    if getattr(meta, "empty", True):
        return "requirement"
    return " ".join(builder.text[meta.start_pos:meta.end_pos].split())
