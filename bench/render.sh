#!/usr/bin/env bash
# Render benchmark (issue: render core). For N policies (the Kyverno library
# repeated with new names): render to an empty directory ("first"), render a
# changed response into it ("changed": 1% of the policies renamed, 1% dropped),
# then render that again, which writes nothing ("no-op"). Prints wall time,
# peak RSS and files written.
# Usage: bench/render.sh [N ...]   (default: 1000 2500 5000 10000)
# BIN=path compares another build; ROUNDS=n (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
library=../shared/corpus/insights/library.yaml
[ -f "$library" ] || { echo "needs $library" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-target/release/insights-policy-render}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # label, then the command
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" 2>"$work/stderr" >/dev/null
  read -r secs kb <"$work/time"
  printf '%-8s %8.2f s %8.1f MB   %s\n' "$label" "$secs" "$(echo "$kb/1024" | bc -l)" "$(grep -v WARN "$work/stderr" | tail -1)"
}

for n in "${@:-1000 2500 5000 10000}"; do
  for one in $n; do
    input="$work/in-$one.yaml"
    python3 bench/gen_library.py "$library" "$one" "$input"
    changed="$work/changed-$one.yaml"
    python3 - "$input" "$changed" <<'PY'
import re, sys
docs = open(sys.argv[1], encoding="utf-8").read().split("\n---")
out = []
for i, d in enumerate(docs):
    if i % 100 == 99:
        continue  # dropped: a removal
    if i % 100 == 49:
        d = re.sub(r"(?m)^(  name: \S+-r\d+)$", r"\1-b", d, count=1)  # renamed: add + removal
    out.append(d)
open(sys.argv[2], "w", encoding="utf-8").write("\n---".join(out))
PY
    echo "== $one policies, $(du -m "$input" | cut -f1) MB of YAML"
    # Five rounds: creating thousands of files on ext4 right after deleting
    # thousands varies by several times from run to run (inode allocation
    # skips recently deleted inodes), so look at the spread, not one number.
    for round in $(seq "${ROUNDS:-5}"); do
      out="$work/out-$one-$round"
      measure first "$bin" render --from-file "$input" --out "$out"
      measure changed "$bin" render --max-removals 100% --from-file "$changed" --out "$out"
      touch "$work/marker"; sleep 1
      measure no-op "$bin" render --from-file "$changed" --out "$out"
      echo "         files written by the no-op run: $(find "$out" -newer "$work/marker" | wc -l)"
      rm -rf "$out"
    done
  done
done
