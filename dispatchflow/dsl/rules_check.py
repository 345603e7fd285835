"""Check rule sets and dispatch policies parsed from ``.rules`` files.

Returns copies of the declarations with every expression type-checked, after
reporting: unknown entities, set targets that are not fields of the triggering
record (or are system fields), values that do not fit the target field, actions
naming unknown notifications / flows / policies / roles, duplicate names, and
two rules of one rule set that set the same field at the same salience.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import ast
from . import types as T
from .checker import ExprChecker, Scope
from .diagnostics import DiagnosticBag
from .model import EntityDef, field_type
from .suggest import did_you_mean
from .tables import table_roots


@dataclass
class Names:
    """Names of bundle items that actions and policies may refer to."""

    notifications: set[str]
    flows: set[str]
    roles: set[str]
    policies: dict[str, str]  # policy -> entity it dispatches
    broken: set[tuple[str, str]]


def entity_root(entities: dict[str, EntityDef], name: str) -> T.Type:
    """The scope type for a root naming an entity (error type if it does not exist)."""
    return T.entity_type(name) if name in entities else T.T_ERROR


def check_entity_name(name: str, entities: dict[str, EntityDef], file: str, span,
                      bag: DiagnosticBag, broken: set[tuple[str, str]]) -> bool:
    """Report E1021 for an unknown entity (unless its own file already failed)."""
    if name in entities:
        return True
    if ("entity", name) not in broken:
        bag.error("E1021", f"unknown entity '{name}'", file, span, did_you_mean(name, entities))
    return False


def check_ruleset(rs: ast.RulesetDecl, entities: dict[str, EntityDef], names: Names,
                  bag: DiagnosticBag, tables: dict | None = None) -> ast.RulesetDecl:
    """Type-check one rule set; returns the checked copy.

    Besides the triggering record, conditions and values may read the outputs of
    decision tables over the same entity (``sla_targets.response_within``).
    """
    file = rs.file
    check_entity_name(rs.entity, entities, file, rs.trigger_span, bag, names.broken)
    if rs.hit not in ("all", "first"):
        bag.error("E1014", f"unknown hit policy '{rs.hit}' for a rule set", file, rs.hit_span,
                  "rule sets use 'hit all' (every matching rule fires) or 'hit first'")
    t_roots, t_entities = table_roots(tables or {}, rs.entity, {rs.entity})
    scope = Scope({rs.entity: entity_root(entities, rs.entity), **t_roots},
                  {**entities, **t_entities},
                  silent={name for kind, name in names.broken if kind == "table"})
    checker = ExprChecker(scope, bag, file)
    rules = []
    seen: dict[str, ast.RuleDecl] = {}
    for rule in rs.rules:
        if rule.name in seen:
            bag.error("E1020", f"rule \"{rule.name}\" appears twice in ruleset {rs.name}", file,
                      rule.name_span, "give every rule of a rule set its own name")
        seen[rule.name] = rule
        condition = checker.check_condition(rule.condition, "a rule's 'when' condition")
        actions = tuple(_check_action(a, rs, entities, names, checker, bag) for a in rule.actions)
        rules.append(replace(rule, condition=condition, actions=actions))
    _warn_conflicts(rs, rules, bag)
    return replace(rs, rules=tuple(rules))


def _check_action(action: ast.Action, rs: ast.RulesetDecl, entities: dict[str, EntityDef],
                  names: Names, checker: ExprChecker, bag: DiagnosticBag) -> ast.Action:
    file = rs.file
    entity = entities.get(rs.entity)
    if isinstance(action, ast.SetAction):
        target = action.target
        value = action.value
        if target.root != rs.entity:
            bag.error("E3020", f"a rule on {rs.entity} can only set {rs.entity}'s fields",
                      file, target.root_span, f"write: set {rs.entity}.<field> = ...")
            return replace(action, value=checker.check(value))
        if len(target.steps) != 1:
            bag.error("E3020", "set a field of the record itself, not of a related record",
                      file, target.span, "rules change the record that triggered them")
            return replace(action, value=checker.check(value))
        if entity is None:
            return replace(action, value=checker.check(value))
        fname = target.steps[0].name
        fdef = entity.fields.get(fname)
        if fdef is None:
            bag.error("E3001", f"unknown field '{fname}' on {entity.name}", file,
                      target.steps[0].span, did_you_mean(fname, entity.fields))
            return replace(action, value=checker.check(value))
        if fdef.system:
            hint = "use 'tag'/'untag' for tags" if fname == "tags" else None
            bag.error("E3020", f"'{fname}' is a system field and cannot be set", file,
                      target.steps[0].span, hint)
            return replace(action, value=checker.check(value))
        expected = field_type(fdef)
        typed = checker.check_value(value, expected, f"{entity.name}.{fname}")
        return replace(action, value=typed)
    if isinstance(action, ast.TagAction):
        if action.record != rs.entity:
            bag.error("E3002", f"unknown record '{action.record}'", file, action.span,
                      f"write: {'untag' if action.remove else 'tag'} {rs.entity} "
                      f"\"{action.tag}\"")
        return action
    if isinstance(action, ast.EmitAction):
        if action.entity != rs.entity:
            bag.error("E3020", f"a rule on {rs.entity} emits {rs.entity} events", file,
                      action.span, f"write: emit {rs.entity}.{action.event}")
        return action
    if isinstance(action, ast.NotifyAction):
        _known(action.notification, names.notifications, "notification", file, action.span,
               bag, names.broken)
        return action
    if isinstance(action, ast.StartFlowAction):
        _known(action.flow, names.flows, "flow", file, action.span, bag, names.broken)
        return action
    if isinstance(action, ast.DispatchAction):
        if action.policy is not None and _known(action.policy, set(names.policies),
                                                "dispatch policy", file, action.span, bag,
                                                names.broken):
            if names.policies[action.policy] != rs.entity:
                bag.error("E3030", f"dispatch policy {action.policy} dispatches "
                          f"{names.policies[action.policy]}, not {rs.entity}", file, action.span)
        return action
    raise AssertionError(action)


def _known(name: str, pool: set[str], what: str, file: str, span, bag: DiagnosticBag,
           broken: set[tuple[str, str]]) -> bool:
    if name in pool:
        return True
    if not any(b[1] == name for b in broken):
        bag.error("E3030", f"unknown {what} '{name}'", file, span,
                  did_you_mean(name, pool) or (f"defined ones: {', '.join(sorted(pool))}"
                                               if pool else f"no {what} is defined"))
    return False


def _warn_conflicts(rs: ast.RulesetDecl, rules: list[ast.RuleDecl], bag: DiagnosticBag) -> None:
    if rs.hit != "all":
        return
    seen: dict[tuple[int, str], ast.RuleDecl] = {}
    for rule in rules:
        for action in rule.actions:
            if not isinstance(action, ast.SetAction) or not action.target.steps:
                continue
            key = (rule.salience, action.target.steps[0].name)
            other = seen.get(key)
            if other is not None and other is not rule:
                bag.warning("W7001", f"rules \"{other.name}\" and \"{rule.name}\" both set "
                            f"{action.target.dotted()} at salience {rule.salience}", rs.file,
                            action.span, "when both match, the later rule wins silently; give "
                            "one a higher salience to make the order explicit")
            else:
                seen[key] = rule


def check_policy(p: ast.PolicyDecl, entities: dict[str, EntityDef], names: Names,
                 bag: DiagnosticBag) -> ast.PolicyDecl:
    """Type-check one dispatch policy; returns the checked copy."""
    file = p.file
    check_entity_name(p.entity, entities, file, p.header_span, bag, names.broken)
    check_entity_name(p.pool, entities, file, p.header_span, bag, names.broken)
    if p.entity == p.pool:
        bag.error("E3020", "a policy dispatches one entity to another (e.g. work_order from "
                  "technician)", file, p.header_span)
    scope = Scope({p.entity: entity_root(entities, p.entity),
                   p.pool: entity_root(entities, p.pool)}, entities)
    checker = ExprChecker(scope, bag, file)
    requires = tuple(replace(r, condition=checker.check_condition(r.condition, "a requirement"))
                     for r in p.requires)
    scores = []
    for s in p.scores:
        value = checker.check(s.value)
        vt = value.type
        assert vt is not None
        if not vt.is_error and vt.kind != T.NUMBER:
            hint = "divide by a unit to get a number, e.g. distance / 5km" \
                if vt.kind in (T.DISTANCE, T.DURATION) else None
            bag.error("E3012" if hint else "E3021", f"a score must be a number, got {vt}",
                      file, s.value.span, hint)
        elif vt.nullable and not vt.null_ok:
            bag.warning("W4001", "score term may be null; a null term counts as 0", file,
                        s.value.span, "make it explicit with coalesce(value, 0)")
        guard = checker.check_condition(s.guard, "a score's 'if' condition") \
            if s.guard is not None else None
        scores.append(replace(s, value=value, guard=guard))
    ties = []
    for tb in p.tiebreaks:
        value = checker.check(tb.value)
        vt = value.type
        assert vt is not None
        if not vt.is_error and vt.kind not in T.ORDERABLE:
            bag.error("E3010", f"cannot order candidates by {vt}", file, tb.value.span)
        ties.append(replace(tb, value=value))
    offer = p.offer
    if offer is not None:
        order_checker = ExprChecker(Scope({p.entity: scope.roots[p.entity]}, entities), bag,
                                    file)
        within = order_checker.check_value(offer.accept_within, T.T_DURATION,
                                           "the accept window")
        if offer.escalate_to_role is not None and offer.escalate_to_role not in names.roles:
            bag.error("E1021", f"unknown role '{offer.escalate_to_role}'", file,
                      offer.role_span, did_you_mean(offer.escalate_to_role, names.roles))
        if offer.strategy == "broadcast" and offer.top_k < 1:
            bag.error("E1014", "broadcast needs top 1 or more", file, offer.span)
        offer = replace(offer, accept_within=within)
    return replace(p, requires=requires, scores=tuple(scores), tiebreaks=tuple(ties),
                   offer=offer)
