"""Draw a compiled flow: Mermaid and Graphviz DOT text, SVG/PNG through graphviz's `dot`."""

from __future__ import annotations

import shutil
import subprocess

from . import ir

_SHAPES_DOT = {"menu": "box3d", "collect": "box3d", "record": "box3d", "hangup": "doublecircle", "transfer": "doubleoctagon",
               "return": "doublecircle", "branch": "diamond", "hours": "diamond", "action": "component", "call": "folder"}

CJK_FONT = "Noto Sans CJK SC"


def _node_id(scope: str, name: str) -> str:
    return f"{scope}__{name}" if scope else name


def _label(s: ir.State) -> str:
    detail = {"action": lambda: s.spec.name, "call": lambda: s.spec.subflow, "return": lambda: s.spec.outcome,
              "play": lambda: ", ".join(p.value for p in s.spec.prompts)[:40]}.get(s.kind, lambda: "")()
    text = f"{s.name}\n[{s.kind}{': ' + detail if detail else ''}]"
    if s.description:
        text += f"\n{s.description}"
    return text


def _edges(flow: ir.Flow):
    for s in flow.all_states():
        for t in s.transitions:
            label = t.label or (("else" if s.kind == "branch" else "") if t.outcome == "default" else t.outcome)
            yield _node_id(s.scope, s.name), _node_id(s.scope, t.target), label, "solid"
        if s.kind == "call" and s.spec.subflow in flow.subflows:
            sf = flow.subflows[s.spec.subflow]
            yield _node_id(s.scope, s.name), _node_id(sf.name, sf.start), "call", "dashed"
    for k, target in flow.global_keys.items():
        yield "__keys", target, f"key {k}", "dotted"
    for name, target in (("__hangup", flow.on_hangup), ("__error", flow.on_error), ("__failed", flow.on_failed)):
        if target:
            yield name, target, "", "dotted"


def _handlers(flow: ir.Flow):
    out = []
    if flow.global_keys:
        out.append(("__keys", "global keys"))
    for name, target, label in (("__hangup", flow.on_hangup, "on hangup"), ("__error", flow.on_error, "on error"),
                                ("__failed", flow.on_failed, "on failed")):
        if target:
            out.append((name, label))
    return out


def to_mermaid(flow: ir.Flow) -> str:
    def esc(t: str) -> str:
        return t.replace('"', "#quot;").replace("\n", "<br/>")

    lines = ["flowchart TD", f'  __start(("start")) --> {flow.start}']
    scopes = [("", flow.states)] + [(n, sf.states) for n, sf in flow.subflows.items()]
    for scope, states in scopes:
        if scope:
            lines.append(f'  subgraph {scope}["sub-flow {scope}"]')
        for s in states.values():
            nid = _node_id(scope, s.name)
            lab = esc(_label(s))
            if s.kind in ("branch", "hours"):
                lines.append(f'  {nid}{{"{lab}"}}')
            elif s.kind in ("hangup", "return", "transfer"):
                lines.append(f'  {nid}(["{lab}"])')
            else:
                lines.append(f'  {nid}["{lab}"]')
        if scope:
            lines.append("  end")
    for nid, lab in _handlers(flow):
        lines.append(f'  {nid}>"{lab}"]')
    for a, b, label, style in _edges(flow):
        arrow = {"solid": "-->", "dashed": "-.->", "dotted": "-.->"}[style]
        lines.append(f'  {a} {arrow}|"{esc(label)}"| {b}' if label else f"  {a} {arrow} {b}")
    return "\n".join(lines) + "\n"


def to_dot(flow: ir.Flow) -> str:
    def q(t: str) -> str:
        return '"' + t.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"digraph {q(flow.name)} {{", "  rankdir=TB;",
             f'  graph [fontname={q(CJK_FONT)}, label={q(flow.name + (" — " + flow.description if flow.description else ""))}];',
             f"  node [fontname={q(CJK_FONT)}, shape=box, style=rounded];", f"  edge [fontname={q(CJK_FONT)}, fontsize=10];",
             '  __start [shape=point];', f"  __start -> {q(flow.start)};"]
    scopes = [("", flow.states)] + [(n, sf.states) for n, sf in flow.subflows.items()]
    for scope, states in scopes:
        if scope:
            lines.append(f"  subgraph {q('cluster_' + scope)} {{ label={q('sub-flow ' + scope)};")
        for s in states.values():
            shape = _SHAPES_DOT.get(s.kind, "box")
            lines.append(f"  {q(_node_id(scope, s.name))} [label={q(_label(s))}, shape={shape}];")
        if scope:
            lines.append("  }")
    for nid, lab in _handlers(flow):
        lines.append(f"  {q(nid)} [label={q(lab)}, shape=note];")
    for a, b, label, style in _edges(flow):
        lines.append(f"  {q(a)} -> {q(b)} [label={q(label)}, style={style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphvizMissing(RuntimeError):
    pass


def render(flow: ir.Flow, fmt: str) -> bytes:
    """Render to svg or png with graphviz's ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing("graphviz is not installed: `apt-get install graphviz fonts-noto-cjk` (or run `make sysdeps` as root)")
    p = subprocess.run([dot, f"-T{fmt}"], input=to_dot(flow).encode("utf-8"), capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"dot failed: {p.stderr.decode(errors='replace').strip()}")
    return p.stdout
