"""Whole-flow checks on the compiled graph: reachability (E301), a way to end (E302),
loops that never wait for the caller (E303), variables read before assignment (E305),
and what the on-hangup handler may do (E306).

The graph is interprocedural: a ``call`` state has an edge to its sub-flow's start,
and each ``return`` state has edges back to the caller's targets for its outcome.
Global keys add edges from every state that waits for input (with keys on) to the
key's target; actions add an edge to the on-error handler.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Mapping


from engine import templating

from . import ir
from .diagnostics import Diagnostic, Position

Node = tuple  # (scope, state name)
IMPLICIT_LABELS = frozenset({"error*", "failed*"})



def defined_by_condition(source: str) -> frozenset[str]:
    """Names a true condition proves set: the ``X is defined`` conjuncts of an ``and`` chain."""
    try:
        return templating.analyse(source, True).defines
    except templating.TemplateError:
        return frozenset()


def required_names(source: str, expression: bool = False) -> frozenset[str]:
    """Variables a template reads without a guard (``is defined`` / ``default``)."""
    try:
        return templating.analyse(source, expression).required
    except templating.TemplateError:
        return frozenset()


class Graph:
    def __init__(self, flow: ir.Flow, registry: Mapping[str, Any], opaque: Mapping[Node, Iterable[str]] | None = None):
        self.flow = flow
        #: states that failed to compile: kept as nodes whose edges are the names their raw text mentions
        self.opaque = dict(opaque or {})
        self.registry = registry
        # edges: node -> list[(target node, gen set, label)]
        self.edges: dict[Node, list[tuple[Node, frozenset[str], str]]] = {}
        self.nodes: dict[Node, ir.State] = {}
        for s in flow.all_states():
            self.nodes[(s.scope, s.name)] = s
        for node, s in self.nodes.items():
            self.edges[node] = list(self._edges(s))
        for node, targets in self.opaque.items():
            self.edges[node] = [((node[0], t), frozenset(), "?") for t in targets]

    def state_gen(self, s: ir.State, outcome: str) -> frozenset[str]:
        k, sp = s.kind, s.spec
        if k == "collect":
            return frozenset({sp.into, "last_key"}) if outcome == "ok" else frozenset({"last_key"})
        if k == "menu":
            base = {"last_key"}
            if sp.into and outcome not in ("failed", "default"):
                base.add(sp.into)
            return frozenset(base)
        if k == "set":
            return frozenset(n for n, _ in sp.assignments)
        if k == "branch" and outcome.startswith("case"):
            i = int(outcome[4:]) - 1
            if 0 <= i < len(sp.cases):
                return defined_by_condition(sp.cases[i][0].source)
            return frozenset()
        if k == "record":
            return frozenset({sp.into})
        if k == "conference":
            return frozenset({sp.into}) if sp.into else frozenset()
        if k == "action":
            action = self.registry.get(sp.name)
            if action is None or outcome == "error":
                return frozenset()
            extra: frozenset = frozenset()
            if action.dynamic_sets is not None:
                try:
                    dyn = action.dynamic_sets(sp.params) or {}
                except Exception:
                    dyn = {}
                if outcome == "default":
                    listed = {t.outcome for t in s.transitions}
                    outs = [o for o in action.outcomes if o not in listed]
                    extra = frozenset(set.intersection(*[set(dyn.get(o, ())) for o in outs])) if outs else frozenset()
                else:
                    extra = frozenset(dyn.get(outcome, ()))
            return extra | self._static_sets(action, s, outcome)
        return frozenset()

    def _static_sets(self, action, s: ir.State, outcome: str) -> frozenset[str]:
        sets = action.sets
        if not isinstance(sets, Mapping):
            return frozenset(sets)
        if outcome != "default":
            return frozenset(sets.get(outcome, ()))
        # the default edge is taken by every unlisted outcome: only what all of them set
        listed = {t.outcome for t in s.transitions}
        outs = [o for o in action.outcomes if o not in listed]
        if not outs:
            return frozenset()
        return frozenset(set.intersection(*[set(sets.get(o, ())) for o in outs]))

    def _edges(self, s: ir.State):
        flow = self.flow
        if s.kind == "call":
            sf = flow.subflows.get(s.spec.subflow)
            if sf is not None and sf.start in sf.states:
                yield (sf.name, sf.start), frozenset(), "call"
        else:
            for t in s.transitions:
                yield (s.scope, t.target), self.state_gen(s, t.outcome), t.outcome
        if s.kind == "return":
            # back to every caller's target for this outcome
            for caller in flow.all_states():
                if caller.kind == "call" and caller.spec.subflow == s.scope:
                    tgt = caller.target(s.spec.outcome)
                    if tgt is not None:
                        yield (caller.scope, tgt), frozenset(), f"return {s.spec.outcome}"
        # implicit edges
        if s.kind == "action" and flow.on_error and not any(t.outcome == "error" for t in s.transitions):
            yield ("", flow.on_error), frozenset(), "error*"
        if s.kind in ("menu", "collect") and flow.on_failed and not any(t.outcome in ("failed", "default") for t in s.transitions):
            yield ("", flow.on_failed), frozenset({"last_key"}), "failed*"
        keys_on = s.kind == "menu" or (s.kind == "collect" and s.spec.keys)
        if keys_on:
            for k, target in flow.global_keys.items():
                if s.kind == "menu" and k in s.spec.options:
                    continue
                yield ("", target), frozenset({"last_key"}), f"globalkey {k}"

    def successors(self, n: Node):
        return [t for t, _, _ in self.edges.get(n, ())]

    def known(self, n: Node) -> bool:
        return n in self.nodes or n in self.opaque

    def reachable(self, roots: Iterable[Node], explicit_only: bool = False) -> set[Node]:
        """States reachable from roots; ``explicit_only`` leaves out the implicit edges
        (global keys, on error, on failed) -- what the on-hangup handler can run."""
        seen: set[Node] = set()
        todo = [r for r in roots if self.known(r)]
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            for t, _, label in self.edges.get(n, ()):
                if explicit_only and (label in IMPLICIT_LABELS or label.startswith("globalkey ")):
                    continue
                if self.known(t) and t not in seen:
                    todo.append(t)
        return seen


def _sccs(nodes_: Iterable[Node], succ) -> list[list[Node]]:
    """Tarjan's algorithm, iterative."""
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    out: list[list[Node]] = []
    counter = 0
    for root in nodes_:
        if root in index:
            continue
        work = [(root, iter(succ(root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ(w))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def _label(n: Node) -> str:
    return n[1] if not n[0] else f"{n[0]}.{n[1]}"


def check_flow(flow: ir.Flow, registry, reads: dict, bad_states: Mapping[Node, Iterable[str]], diags: list[Diagnostic], doc) -> set[str]:
    g = Graph(flow, registry, {n: t for n, t in bad_states.items() if n not in {(s.scope, s.name) for s in flow.all_states()}})
    start = ("", flow.start)
    entries = [start] + ([("", flow.on_hangup)] if flow.on_hangup else [])
    handler_entries = [("", flow.on_error)] if flow.on_error else []
    handler_entries += [("", flow.on_failed)] if flow.on_failed else []
    handler_entries += [("", t) for t in flow.global_keys.values()]
    reach = g.reachable(entries + [h for h in handler_entries if True])
    # a sub-flow nobody calls: one error for it, not one per state
    called = {s.spec.subflow for s in flow.all_states() if s.kind == "call" and (s.scope, s.name) in reach}
    for sf in flow.subflows.values():
        if sf.name not in called:
            diags.append(Diagnostic("E301", f"sub-flow '{sf.name}' is never called", sf.position))
    for node, s in g.nodes.items():
        if node not in reach and (not node[0] or node[0] in called) and node not in bad_states:
            diags.append(Diagnostic("E301", f"state '{_label(node)}' is unreachable: no path leads to it from '{flow.start}'", s.position))
    # a way to end: reverse reachability from hangup / transfer (states with errors count as able to end,
    # so one mistake is not reported twice)
    preds: dict[Node, list[Node]] = {n: [] for n in list(g.nodes) + list(g.opaque)}
    for n, es in g.edges.items():
        for t, _, _ in es:
            if t in preds:
                preds[t].append(n)
    enders = [n for n, s in g.nodes.items() if s.kind in ("hangup", "transfer") or n in bad_states] + list(g.opaque)
    enders += [n for n in g.nodes if n not in bad_states and _has_error_at(diags, g.nodes[n])]
    can_end: set[Node] = set()
    dq = deque(enders)
    while dq:
        n = dq.popleft()
        if n in can_end:
            continue
        can_end.add(n)
        dq.extend(p for p in preds[n] if p not in can_end)
    handler_region = g.reachable([("", flow.on_hangup)], explicit_only=True) if flow.on_hangup else set()
    for n in sorted(reach):
        if n not in can_end and n in g.nodes:
            diags.append(Diagnostic("E302", f"state '{_label(n)}' has no way to end: no path from it reaches a hangup or a transfer",
                                    g.nodes[n].position))
    # loops that never wait for the caller
    non_waiting = [n for n in g.nodes if g.nodes[n].kind not in ir.WAITING_KINDS and n in reach]
    nw_set = set(non_waiting)
    succ = lambda n: [t for t in g.successors(n) if t in nw_set]  # noqa: E731
    for comp in _sccs(sorted(non_waiting), succ):
        cyclic = len(comp) > 1 or comp[0] in succ(comp[0])
        if not cyclic:
            continue
        if any(g.nodes[n].kind == "branch" for n in comp):
            continue  # bounded by a condition (e.g. a retry counter); the step limit guards the rest
        names = sorted(_label(n) for n in comp)
        first = min(comp, key=lambda n: g.nodes[n].position)
        diags.append(Diagnostic("E303", f"states {', '.join(names)} form a loop that never waits for the caller; "
                                        f"bound it with a branch on a counter, or wait for input in it",
                                g.nodes[first].position))
    # the on-hangup handler cannot talk to the caller
    for n in sorted(handler_region):
        s = g.nodes.get(n)
        if s is None:
            continue
        interactive = s.kind in ir.INTERACTIVE_KINDS or s.kind in ir.WAITING_KINDS or (
            s.kind == "action" and getattr(registry.get(s.spec.name), "interactive", False))
        if interactive:
            diags.append(Diagnostic("E306", f"state '{_label(n)}' runs in the on-hangup handler but talks to the caller ({s.kind}); "
                                            "after a hangup only action, set, branch, call and hangup states can run", s.position))
    # variables: must-assigned forward dataflow (None = not yet computed = everything)
    initial = frozenset(ir.BUILTIN_VARIABLES | set(flow.variables))
    IN: dict[Node, frozenset | None] = {n: None for n in g.nodes}
    for e in entries + handler_entries:
        if e in IN:
            IN[e] = initial if e in entries else None
    for e in entries:
        if e in IN:
            IN[e] = initial
    work = deque(n for n in entries if n in g.nodes)
    fixed_entries = set(entries)
    while work:
        n = work.popleft()
        cur = IN[n]
        if cur is None:
            continue
        for t, gen, _ in g.edges[n]:
            if t not in IN:
                continue
            out = cur | gen
            if t in fixed_entries:
                new = IN[t] & out if IN[t] is not None else out
                new = new | initial
            else:
                new = out if IN[t] is None else (IN[t] & out)
            if new != IN[t]:
                IN[t] = new
                work.append(t)
    assigned: set[str] = set(initial)
    for n, s in g.nodes.items():
        for outcome in [t.outcome for t in s.transitions] + ["ok", "default"]:
            assigned |= g.state_gen(s, outcome)
    reported: set[tuple[str, Node]] = set()
    for n in sorted(reach):
        have = IN.get(n)
        if have is None:
            continue
        for var, pos in reads.get(n, []):
            if var in have or (var, n) in reported:
                continue
            reported.add((var, n))
            if var not in assigned:
                diags.append(Diagnostic("E305", f"variable '{var}' is read in state '{_label(n)}' but never assigned anywhere", pos,
                                        hint=_hint(var, assigned)))
            else:
                path = _witness(g, entries, n, var)
                names = [_label(p) for p in path] if path else [_label(n)]
                if len(names) > 8:  # long witnesses: the start and the end say enough
                    names = names[:3] + [f"… {len(names) - 7} more …"] + names[-4:]
                via = " → ".join(names)
                diags.append(Diagnostic("E305", f"variable '{var}' may be unset when state '{_label(n)}' runs "
                                                f"(not assigned on the path {via})", pos))
    return assigned


def _hint(var: str, assigned: set[str]) -> str | None:
    from .diagnostics import did_you_mean

    return did_you_mean(var, assigned)


def _has_error_at(diags: list[Diagnostic], s: ir.State) -> bool:
    return any(d.severity == "error" and d.position == s.position for d in diags)


def _witness(g: Graph, entries: list[Node], target: Node, var: str) -> list[Node] | None:
    """Shortest path from an entry to ``target`` along which ``var`` is never assigned."""
    prev: dict[Node, Node | None] = {}
    dq = deque()
    for e in entries[:1]:
        if e in g.nodes:
            prev[e] = None
            dq.append(e)
    while dq:
        n = dq.popleft()
        if n == target:
            path = []
            while n is not None:
                path.append(n)
                n = prev[n]
            return list(reversed(path))
        for t, gen, _ in g.edges[n]:
            if var in gen or t in prev or t not in g.nodes:
                continue
            prev[t] = n
            dq.append(t)
    return None
