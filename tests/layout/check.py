#!/usr/bin/env python3
"""check.py: the layering rules of the source tree, as TAP.

    tests/layout/check.py [OBJDIR]

OBJDIR holds the engine's object files (default build/obj/release/sluice).
Checks:
  - lua/ includes Lua's headers, system headers, "lnet.h" and "../net/net.h",
    nothing else of net/; plugin/ includes "../lua/lnet.h" and system headers;
    net/ includes only its own headers (no "../", no Lua);
  - no two files of net/ call each other in a loop (symbols of the objects);
  - every C file of net/, lua/ and plugin/ opens with a comment that names
    its role and the thread that runs it;
  - no function is longer than 60 lines, but the dispatchers listed below.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJDIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/obj/release/sluice")
MAX_LINES = 60
LONG_OK = {}   # "file:function": reason; a dispatcher may be longer

results = []


def check(ok, what, details=()):
    results.append((ok, what, list(details)))


def files(folder, exts=(".c", ".h")):
    d = os.path.join(ROOT, folder)
    return sorted(os.path.join(folder, f) for f in os.listdir(d) if f.endswith(exts))


def includes(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.findall(r'^\s*#\s*include\s*([<"][^>"]+[>"])', f.read(), re.M)


def system_header(inc):
    return inc.startswith("<")


LUA_HEADERS = {"<lua.h>", "<lauxlib.h>", "<lualib.h>"}


def check_includes():
    bad = []
    for p in files("lua"):
        for inc in includes(p):
            if system_header(inc) or inc in ('"lnet.h"', '"../net/net.h"'):
                continue
            bad.append("%s: %s" % (p, inc))
    check(not bad, "lua/ includes net/net.h and Lua headers only", bad)
    bad = []
    for p in files("plugin"):
        for inc in includes(p):
            if (system_header(inc) and inc not in LUA_HEADERS) or inc == '"../lua/lnet.h"':
                continue
            bad.append("%s: %s" % (p, inc))
    check(not bad, "plugin/ includes lua/lnet.h only", bad)
    bad = []
    for p in files("net"):
        for inc in includes(p):
            if system_header(inc):
                if inc in LUA_HEADERS:
                    bad.append("%s: %s" % (p, inc))
                continue
            name = inc.strip('"')
            if "/" in name or not os.path.exists(os.path.join(ROOT, "net", name)):
                bad.append("%s: %s" % (p, inc))
    check(not bad, "net/ includes its own headers only (no Lua, nothing outside net/)", bad)


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCV":
            defined.add(parts[2])
    return defined, undefined


def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def check_call_graph():
    objs = sorted(f for f in os.listdir(OBJDIR) if f.endswith(".o")) if os.path.isdir(OBJDIR) else []
    if not objs:
        check(False, "net/ call graph has no loops", ["no objects in " + OBJDIR])
        return
    defs, undefs = {}, {}
    for o in objs:
        defs[o], undefs[o] = symbols(os.path.join(OBJDIR, o))
    owner = {s: o for o, d in defs.items() for s in d}
    edges = {o: {owner[s] for s in u if s in owner and owner[s] != o} for o, u in undefs.items()}
    loops = cycles(edges)
    graph = ["%s -> %s" % (o, " ".join(sorted(e))) for o, e in sorted(edges.items())]
    check(not loops, "no two files of net/ call each other in a loop",
          ["loop: " + " <-> ".join(c) for c in loops] + graph)


def check_headers():
    bad = []
    for folder in ("net", "lua", "plugin"):
        for p in files(folder, (".c",)):
            with open(os.path.join(ROOT, p), encoding="utf-8") as f:
                head = f.read(4000)
            m = re.match(r"/\*(.*?)\*/", head, re.S)
            name = os.path.basename(p)
            if not m or not m.group(1).strip().startswith(name + ":") or "thread" not in m.group(1):
                bad.append(p)
    check(not bad, "every C file opens with its role and the thread that runs it", bad)


FUNC = re.compile(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\([^;{]*\)\s*\{\s*$", re.M)


def long_functions(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        lines = f.read().split("\n")
    found = []
    i = 0
    while i < len(lines):
        m = FUNC.match(lines[i])
        if not m or lines[i].startswith((" ", "\t")):
            i += 1
            continue
        depth, j = 0, i
        while j < len(lines):
            depth += lines[j].count("{") - lines[j].count("}")
            if depth == 0 and j > i:
                break
            j += 1
        n = j - i + 1
        key = "%s:%s" % (path, m.group(1))
        if n > MAX_LINES and key not in LONG_OK:
            found.append("%s is %d lines" % (key, n))
        i = j + 1
    return found


def check_function_length():
    bad = []
    for folder in ("net", "lua", "plugin"):
        for p in files(folder, (".c",)):
            bad += long_functions(p)
    check(not bad, "no function over %d lines" % MAX_LINES, bad)


def main():
    check_includes()
    check_call_graph()
    check_headers()
    check_function_length()
    for n, (ok, what, details) in enumerate(results, 1):
        print("%sok %d - %s" % ("" if ok else "not ", n, what))
        if not ok:
            for d in details[:40]:
                print("# " + d)
    print("1..%d" % len(results))
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
