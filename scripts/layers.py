#!/usr/bin/env python3
"""The module graph of slmgate's crates: import circles and imports that run up the layers.

    python3 scripts/layers.py            # prints violations; exit status 1 if any
    python3 scripts/layers.py --edges    # also prints every cross-module import

A file's imports are its `crate::…` and `super::…` paths outside `#[cfg(test)]` code,
resolved to the file that defines them (re-exports in a `mod.rs` are followed to the file
they come from). A circle is a set of files that import each other, directly or round a
loop. Layers are listed lowest first in LAYERS: a module may import its own layer and the
ones below it, never one above.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A top-level module of slmgate-core may import only modules of its own layer
# or lower ones.
LAYERS = [
    {"config", "wire", "ml", "db"},  # vocabulary: typed config, wire formats, shared ML, the
                                     # shared store's connection (Postgres)
    {"providers"},             # calling one model (in-process engine or remote wire client)
    {"observe"},               # metrics, traces, the ledger read back from the audit log
    {"route"},                 # the plan and its execution over deployments
    {"govern"},                # keys, limits, PII, guard, audit, review, cost
    {"store", "know"},         # what is kept for clients: stored responses, RAG collections
    {"learn"},                 # shadow, rollouts, distillation, production feedback
    {"advisor"},               # `slmgate plan`: the pattern advisor (config + cost)
    {"state"},                 # the server's parts, loaded once
    {"exchange"},              # one request's pipeline, the same for every API
    {"api"},                   # HTTP: wire adapters, errors, middleware, dashboard
    {"server"},                # bind and serve
    {"fuzzing"},               # entry points for cargo fuzz and the corpus replay test
]

CRATES = ["crates/slmgate-core/src", "crates/slmgate-engine/src"]


def modules(src):
    files = {}
    for p in sorted(src.rglob("*.rs")):
        rel = p.relative_to(src).as_posix()
        parts = [] if rel in ("lib.rs", "main.rs") else rel[:-3].split("/")
        is_dir = bool(parts) and parts[-1] == "mod" or not parts
        if parts and parts[-1] == "mod":
            parts = parts[:-1]
        text = re.sub(r"//[^\n]*", "", p.read_text())
        # Test code may import anything: cut each `#[cfg(test)]` item away.
        text = strip_test_items(text)
        files["::".join(parts)] = (text, is_dir)
    return files


def strip_test_items(text):
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = m.end()
        # The item runs to its `;` (a `mod x;`) or to the end of its outermost braces.
        depth, k = 0, j
        while k < len(text):
            c = text[k]
            if c == ";" and depth == 0:
                k += 1
                break
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    k += 1
                    break
            k += 1
        i = k
    out.append(text[i:])
    return "".join(out)


def defines(text, name):
    return re.search(r"\bpub(?:\([^)]*\))?\s+(?:async\s+)?(?:struct|enum|fn|type|const|static|trait|mod|use\s+[\w:]*::)\s*%s\b" % re.escape(name), text)


def resolve(files, path):
    """The file defining `path` (longest module prefix, then re-exports followed)."""
    for i in range(len(path), -1, -1):
        key = "::".join(path[:i])
        if key in files:
            break
    else:
        return None
    rest = path[i:]
    seen = set()
    while rest and key not in seen:
        seen.add(key)
        text, _ = files[key]
        name = rest[0]
        base = key.split("::") if key else []
        # `pub use child::Name` / `pub use child::{.., Name, ..}` / `pub use child::*`.
        target = None
        for m in re.finditer(r"pub use ((?:\w+::)*\w+)::(\{[^}]*\}|\*|\w+)", text):
            child, what = m.group(1).split("::"), m.group(2)
            names = [w.strip().split(" as ")[-1] for w in what.strip("{}").split(",")]
            cand = "::".join(base + child)
            if name in names or (what == "*" and cand in files and defines(files[cand][0], name)):
                target = base + child
                break
        if target is None:
            return key
        for j in range(len(target), -1, -1):
            k2 = "::".join(target[:j])
            if k2 in files:
                key = k2
                break
    return key


def edges(files):
    out = {}
    for mod, (text, is_dir) in files.items():
        me = mod.split("::") if mod else []
        targets = set()
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)(?:::\{([^}]*)\})?", text):
            rest = [x for x in m.group(2).split("::") if x]
            base = [] if m.group(1) == "crate" else (me[:-1] if (is_dir or not me) else me[:-1])
            path = base + rest
            subs = [path]
            if m.group(3):
                subs = [path + [s.strip().split("::")[0]] for s in m.group(3).split(",")
                        if s.strip() and s.strip() != "self"]
            for p in subs:
                t = resolve(files, p)
                if t is not None and t != mod:
                    targets.add(t)
        out[mod] = targets
    return out


def circles(g):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(100000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def layer_of(mod):
    top = mod.split("::")[0]
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    return None


def main():
    show = "--edges" in sys.argv
    problems = []
    for crate in CRATES:
        files = modules(ROOT / crate)
        g = edges(files)
        for c in circles(g):
            problems.append(f"{crate}: import circle: {' <-> '.join(c)}")
        if "slmgate-core" in crate:
            for top in sorted({m.split('::')[0] for m in files if m}):
                if layer_of(top) is None:
                    problems.append(f"{crate}: module `{top}` is in no layer (scripts/layers.py LAYERS)")
            for a in sorted(g):
                for b in sorted(g[a]):
                    la, lb = layer_of(a), layer_of(b)
                    if a and b and la is not None and lb is not None and lb > la:
                        problems.append(f"{crate}: upward import: {a} -> {b}")
        if show:
            for a in sorted(g):
                for b in sorted(g[a]):
                    if a.split("::")[0] != b.split("::")[0]:
                        print(f"{crate}: {a or 'lib'} -> {b or 'lib'}")
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
