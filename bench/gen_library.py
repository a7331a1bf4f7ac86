#!/usr/bin/env python3
"""Writes an Insights-shaped response of N policies: the real library
(../shared/corpus/insights/library.yaml) repeated, each copy renamed so every
identity is new. Usage: gen_library.py LIBRARY N OUT"""
import re
import sys

library, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(library, encoding="utf-8").read()
docs = [d for d in re.split(r"(?m)^---[ \t]*$", text) if d.strip() and not all(
    l.strip() == "" or l.lstrip().startswith("#") for l in d.splitlines())]
name = re.compile(r"(?m)^(metadata:\n(?:[ \t]+.*\n|[ \t]*\n)*?[ \t]+name: *)([a-z0-9.-]+)")
written = 0
with open(out, "w", encoding="utf-8") as f:
    copy = 0
    while written < count:
        for doc in docs:
            if written == count:
                break
            renamed, n = name.subn(lambda m: f"{m.group(1)}{m.group(2)[:240]}-r{copy}", doc, count=1)
            if n != 1:
                sys.exit(f"cannot find metadata.name in a document:\n{doc[:300]}")
            f.write("---" + renamed.rstrip("\n") + "\n")
            written += 1
        copy += 1
