"""The layering rule of the crashkeep package, checked from the source with ast.

Layers, lowest first; a module may import its own layer and the ones below:

    0 base      crashkeep/*.py (compat, errors, limits)
    1 formats   crashkeep/formats/
    2 system    crashkeep/system/
    3 ops       crashkeep/ops/
    4 commands  crashkeep/commands/
    5 cli       crashkeep/cli/, crashkeep/__main__.py

Every import counts, also those inside functions, and so does a string naming
a crashkeep module ("crashkeep.commands.boot"): the registry and `list` import
by name. Also refused: an import cycle among crashkeep modules, and typer or
click outside cli/.
"""
import ast
import os
import re

LAYERS = ["base", "formats", "system", "ops", "commands", "cli"]
CLI_ONLY = ("typer", "click")
_DOTTED = re.compile(r"^crashkeep(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_PYX_IMPORT = re.compile(r"^\s*(?:from\s+(\S+)\s+c?import\s+(.+)|c?import\s+(\S+))", re.M)


def modules(root):
    """{dotted name: path} of every .py and .pyx file of the package under root."""
    out = {}
    top = os.path.join(root, "crashkeep")
    for d, dirs, files in os.walk(top):
        dirs[:] = sorted(x for x in dirs if not x.startswith((".", "__")))
        rel = os.path.relpath(d, root).split(os.sep)
        for f in sorted(files):
            if f.endswith(".py"):
                stem = f[:-3]
            elif f.endswith(".pyx"):
                stem = f[:-4]
            else:
                continue
            name = ".".join(rel if stem == "__init__" else rel + [stem])
            out[name] = os.path.join(d, f)
    return out


def layer_of(name):
    parts = name.split(".")
    if parts[1:2] == ["__main__"]:
        return LAYERS.index("cli")
    if len(parts) > 2 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if len(parts) == 2 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])      # the package's own __init__
    return 0


def _resolve(target, known):
    """The crashkeep module an import of `target` loads: the longest known prefix."""
    parts = target.split(".")
    while parts:
        n = ".".join(parts)
        if n in known:
            return n
        parts.pop()
    return None


def imports(name, path, known):
    """[(line, imported name)] of one module: crashkeep modules resolved, others as written."""
    with open(path, "rb") as f:
        src = f.read().decode("utf-8")
    found = []
    if path.endswith(".pyx"):        # Cython syntax: the import lines are enough
        for m in _PYX_IMPORT.finditer(src):
            line = src.count("\n", 0, m.start()) + 1
            if m.group(1):
                base = m.group(1)
                found.append((line, base))
                if base == "crashkeep" or base.startswith("crashkeep."):
                    for a in m.group(2).split(","):
                        found.append((line, base + "." + a.split()[0].strip("()")))
            else:
                found.append((line, m.group(3)))
    else:
        for node in ast.walk(ast.parse(src, path)):
            if isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".")
                    if not path.endswith("__init__.py"):
                        pkg = pkg[:-1]
                    pkg = pkg[:len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                found.append((node.lineno, base))
                found += [(node.lineno, base + "." + a.name) for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and _DOTTED.match(node.value):
                found.append((node.lineno, node.value))
    out = []
    for line, target in found:
        if target == "crashkeep" or target.startswith("crashkeep."):
            r = _resolve(target, known)
            if r is not None and r != name and r != "crashkeep":
                out.append((line, r))
        else:
            out.append((line, target))
    return out


def check(root):
    """Problems (one line each) with the imports of the package under root."""
    known = modules(root)
    problems = []
    graph = {}
    for name in sorted(known):
        path = known[name]
        rel = os.path.relpath(path, root)
        edges = set()
        for line, target in imports(name, path, known):
            top = target.split(".")[0]
            if top in CLI_ONLY and layer_of(name) != LAYERS.index("cli"):
                problems.append("%s:%d: imports %s outside crashkeep/cli/" % (rel, line, top))
            if not target.startswith("crashkeep."):
                continue
            if layer_of(target) > layer_of(name):
                problems.append("%s:%d: %s (%s) imports %s (%s): upward"
                                % (rel, line, name, LAYERS[layer_of(name)], target,
                                   LAYERS[layer_of(target)]))
            # a package's __init__ runs before its modules: importing the
            # package is no edge back to a module inside it
            if not name.startswith(target + "."):
                edges.add(target)
        graph[name] = edges
    for cycle in cycles(graph):
        problems.append("import cycle: %s" % " -> ".join(cycle + [cycle[0]]))
    seen = set()
    return [p for p in problems if not (p in seen or seen.add(p))]


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index = {}
    low = {}
    stack = []
    on = set()
    out = []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out
