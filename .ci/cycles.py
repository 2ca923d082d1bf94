#!/usr/bin/env python3
"""Dependency cycles between hlocal's source files, as a ratchet.

Reads every `src/**/*.rs` (test code left out: `src/**/tests/` and what follows a
`#[cfg(test)] mod`), resolves each `crate::…` and `super::…` path to the file it names (a path that
starts with an item, `super::Signal`, names no module and is not followed),
and finds the strongly connected components of that graph: each component of more than
one file is a cycle. The cycles that existed when this check was added are listed in
`.ci/cycles.allowed` (one component per line, its files sorted and space-separated); the
check fails when a cycle appears that is not listed, or a listed one grows. Remove a line
when its cycle is gone (the check says so), so it cannot come back.

    python3 .ci/cycles.py            # check
    python3 .ci/cycles.py --list     # print today's cycles in the allow-list format
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
ALLOWED = Path(__file__).resolve().parent / "cycles.allowed"

PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+|::\{)")
TEST_MOD = re.compile(r"^#\[cfg\(test\)\]\s*\n\s*(pub(\([a-z]+\))?\s+)?mod\s", re.M)


def module_of(file: Path) -> list[str]:
    parts = list(file.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "main", "lib"):
        parts.pop()
    return parts


def file_of(module: list[str], files: dict[tuple, Path]) -> Path | None:
    """The file of the longest prefix of `module` that is a file's module."""
    for end in range(len(module), -1, -1):
        found = files.get(tuple(module[:end]))
        if found:
            return found
    return None


def braced(text: str, start: int) -> str:
    """The text inside the braces opening at `start`."""
    depth = 0
    for at in range(start, len(text)):
        if text[at] == "{":
            depth += 1
        elif text[at] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : at]
    return ""


def top_level_items(inner: str) -> list[str]:
    items, depth, current = [], 0, ""
    for c in inner:
        if c == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        depth += c == "{"
        depth -= c == "}"
        current += c
    items.append(current.strip())
    return [item for item in items if item]


def targets(text: str, here: list[str]) -> list[list[str]]:
    """Module paths named by `crate::…` and `super::…` in `text`, from module `here`."""
    found = []
    for match in PATH.finditer(text):
        base = [] if match.group(1) == "crate" else here[:-1]
        rest = match.group(2)
        if rest == "::{":
            for item in top_level_items(braced(text, match.end() - 1)):
                segments = re.match(r"[a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*", item)
                if segments:
                    found.append(base + segments.group(0).split("::"))
            continue
        segments = rest.strip(":").split("::")
        while segments and segments[0] == "super":  # super::super::x
            base = base[:-1]
            segments = segments[1:]
        found.append(base + segments)
    return found


def graph() -> dict[Path, set[Path]]:
    sources = [
        f for f in SRC.rglob("*.rs") if "tests" not in f.relative_to(SRC).parts[:-1]
    ]
    files = {tuple(module_of(f)): f for f in sources}
    edges: dict[Path, set[Path]] = {}
    for f in sources:
        text = f.read_text()
        test = TEST_MOD.search(text)
        if test:
            text = text[: test.start()]
        here = module_of(f)
        # For `mod.rs`, `super::` is relative to the folder's own module.
        if f.stem == "mod":
            here = here + ["mod"]
        deps = {file_of(t, files) for t in targets(text, here)}
        edges[f] = {d for d in deps if d and d != f}
    return edges


def cycles(edges: dict[Path, set[Path]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one file (Tarjan, iterative)."""
    index, low, on_stack, stack, result = {}, {}, set(), [], []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        names = (str(m.relative_to(ROOT)) for m in component)
                        result.append(frozenset(names))
                continue
            if child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return result


def main() -> int:
    found = cycles(graph())
    if "--list" in sys.argv:
        for component in sorted(" ".join(sorted(c)) for c in found):
            print(component)
        return 0
    allowed = [
        frozenset(line.split())
        for line in ALLOWED.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    failed = False
    for component in found:
        if not any(component <= a for a in allowed):
            print(f"new dependency cycle between source files: {' '.join(sorted(component))}")
            failed = True
    for a in allowed:
        if not any(c & a for c in found):
            print(f"cycle gone, remove it from {ALLOWED.relative_to(ROOT)}: {' '.join(sorted(a))}")
            failed = True
    if not failed:
        print(f"source cycles: {len(found)}, none new (allowed: {len(allowed)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
