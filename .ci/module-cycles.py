#!/usr/bin/env python3
"""Module-level import cycles in a `cargo modules dependencies` graph.

Usage (cargo-modules 0.27 for rustc 1.95):
    cargo install cargo-modules@0.27.0 --locked
    cargo modules dependencies --lib [--cfg-test] --no-externs --no-sysroot > graph.dot
    python3 .ci/module-cycles.py graph.dot

The test suite checks the same from the source text (tests/testsuite/architecture.rs),
without the tool, which takes long to build; this is the independent check.

Every item is attributed to the module that holds it; each "uses" edge
between items becomes an edge between their modules. Prints the strongly
connected components of more than one module (none: the graph is acyclic).
"""
import re, sys
text = open(sys.argv[1]).read()
kinds = {}
for name, label in re.findall(r'^\s*"([^"]+)" \[label="([^"]*)"', text, re.M):
    kinds[name] = label.split('|')[0]
mods = {n for n, k in kinds.items() if k.endswith('mod') or k == 'crate'}
def module_of(n):
    while n not in mods:
        n = n.rsplit('::', 1)[0]
    return n
edges = {m: set() for m in mods}
for a, b in re.findall(r'^\s*"([^"]+)" -> "([^"]+)" \[label="uses"', text, re.M):
    if a in kinds and b in kinds:
        ma, mb = module_of(a), module_of(b)
        if ma != mb:
            edges[ma].add(mb)
sys.setrecursionlimit(100000)
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
for v in list(edges):
    if v not in idx: sc(v)
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} module-to-module use edges, {len(out)} cycles")
for comp in out:
    print("CYCLE:", comp)
    for a in comp:
        print("   ", a, "->", sorted(e for e in edges[a] if e in comp))
