#!/usr/bin/env bash
# --crd-dir benchmark (issue 12): peak memory and wall time of
# `render --stdout --crd-dir` against the Kyverno CRDs of ../shared/crds, for
#   library: the 505 policies of ../shared/corpus/insights/library.yaml (the
#            published Kyverno library as one response), without the one
#            policy that its CRD refuses, so the run succeeds;
#   one:     the first policy of that library alone (a ClusterPolicy);
#   none:    the same policy without --crd-dir, for the baseline.
# Prints the median and range of ROUNDS runs (default 5) of each: wall time,
# CPU time (user + system; unlike wall time, it barely moves with the load
# of a shared machine) and peak RSS.
# Usage: bench/crd.sh        BIN=path measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
library=../shared/corpus/insights/library.yaml
crds=../shared/crds/kyverno
[ -f "$library" ] && [ -d "$crds" ] || { echo "needs $library and $crds" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-target/release/insights-policy-render}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$library" "$work" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
docs = [d for d in re.split(r"(?m)^---[ \t]*$", text) if d.strip()]
keep = [d for d in docs if "name: schedule-based-quotas" not in d]
assert len(keep) == len(docs) - 1, "the refused policy is no longer in the library"
open(sys.argv[2] + "/library.yaml", "w", encoding="utf-8").write("".join("---" + d for d in keep))
open(sys.argv[2] + "/one.yaml", "w", encoding="utf-8").write("---" + keep[0])
print(f"library: {len(keep)} policies; one: {keep[0].split(chr(10))[2]}")
PY

run() { # label, input, extra args...
  local label=$1 input=$2; shift 2
  local secs=() cpus=() mbs=()
  for _ in $(seq "${ROUNDS:-5}"); do
    /usr/bin/time -v -o "$work/time" "$bin" render --from-file "$input" --stdout "$@" \
      >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
    secs+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$work/time")")
    cpus+=("$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$work/time")")
    mbs+=("$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$work/time")")
  done
  python3 - "$label" "${secs[*]}" "${cpus[*]}" "${mbs[*]}" <<'PY'
import statistics, sys
label = sys.argv[1]
secs, cpus, mbs = ([float(x) for x in a.split()] for a in sys.argv[2:5])
print(f"{label:<22} {statistics.median(secs):6.2f} s ({min(secs):.2f}-{max(secs):.2f})   "
      f"cpu {statistics.median(cpus):5.2f} s ({min(cpus):.2f}-{max(cpus):.2f})   "
      f"{statistics.median(mbs):7.1f} MB ({min(mbs):.1f}-{max(mbs):.1f})")
PY
}

run "library --crd-dir" "$work/library.yaml" --crd-dir "$crds"
run "one --crd-dir" "$work/one.yaml" --crd-dir "$crds"
run "one, no --crd-dir" "$work/one.yaml"
run "library, no --crd-dir" "$work/library.yaml"
