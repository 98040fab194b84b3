#!/usr/bin/env python3
"""Lists public declarations without a documentation comment.

Usage: scripts/doc-coverage.py [TARGET ...]   (default: every library target under Sources/)

A declaration counts as documented when a `///` comment (or a `/** */` block) sits directly above
it, attributes such as `@_specialize` or `@inlinable` in between allowed. Public declarations are
lines that declare with `public` or `open`, the cases of public enums, and the requirements of
public protocols. Exits 1 if any is undocumented, printing each as file:line: declaration.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT = ["Attention", "AttentionModels", "AttentionRendering", "AttentionExperiments", "AttentionExplorer", "AttentionServer", "AttentionCLI"]
DECL = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:public|open)\s+(?:(?:static|final|mutating|nonmutating|override|indirect|convenience|required|nonisolated|class)\s+)*"
                  r"(func|var|let|init|subscript|struct|enum|class|actor|protocol|typealias|extension|case)\b")
TYPE_OPEN = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*public\s+(?:indirect\s+)?(enum|protocol)\s+\w+")


def documented(lines, i):
    j = i - 1
    while j >= 0 and (lines[j].strip().startswith("@") or lines[j].strip() == "" and False):
        j -= 1
    if j < 0:
        return False
    s = lines[j].strip()
    return s.startswith("///") or s.endswith("*/")


def scan(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    missing = []
    # Stack of (kind, indent) for public enums/protocols, to catch their cases and requirements.
    stack = []
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        while stack and line.strip() == "}" and indent <= stack[-1][1]:
            stack.pop()
            break
        m = DECL.match(line)
        if m:
            kind = m.group(1)
            # An extension is not a symbol of its own; its members are checked one by one.
            if kind != "extension" and not documented(lines, i):
                missing.append((i + 1, line.strip()))
            t = TYPE_OPEN.match(line)
            if t and line.rstrip().endswith("{"):
                stack.append((t.group(1), indent))
            continue
        if stack:
            kind, outer = stack[-1]
            inner = line.strip()
            if indent == outer + 4:
                if kind == "enum" and inner.startswith("case ") and not documented(lines, i):
                    missing.append((i + 1, inner))
                elif kind == "protocol" and re.match(r"(static\s+)?(func|var|init|associatedtype|subscript)\b", inner) and not documented(lines, i):
                    missing.append((i + 1, inner))
    return missing


def main():
    targets = sys.argv[1:] or DEFAULT
    total = 0
    for target in targets:
        for path in sorted((ROOT / "Sources" / target).rglob("*.swift")):
            for line, text in scan(path):
                print(f"{path.relative_to(ROOT)}:{line}: {text}")
                total += 1
    print(f"{total} public declarations without documentation in {', '.join(targets)}", file=sys.stderr)
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
