#!/usr/bin/env bash
# Runs libFuzzer harnesses for a fixed time each; used by `make fuzz` and `make fuzz-smoke`.
#
#   bash tools/fuzz.sh SECONDS build/fuzz/fuzz_X [build/fuzz/fuzz_Y ...]
#   FUZZ_RUNS=10000000 bash tools/fuzz.sh 0 ...   # a campaign of exactly N executions
#
# For each harness fuzz_X:
#   1. every file in native/fuzz/regressions/fuzz_X/ (crashers kept as
#      regression tests) is run through it once; any failure is a finding;
#   2. it fuzzes for SECONDS (0 = regressions only) over the corpus
#      build/fuzz-corpus/fuzz_X, first seeded from native/fuzz/corpus/fuzz_X/;
#      crashes, leaks, timeouts and OOMs are written to build/fuzz-crashes/.
#      With FUZZ_RUNS=N set, each harness instead runs exactly N inputs, however
#      long that takes (SECONDS is then ignored).
# Limits on every run: -malloc_limit_mb=512 (one allocation), -timeout=10 (seconds
# per input), -rss_limit_mb=2048 (the whole process: under ASan the RSS of a
# long campaign creeps past 512 MB from quarantine and allocator caches alone -
# a 12-minute fuzz_dns run stopped at 514 MB with 26 MB of live heap).
# Logs: build/fuzz-logs/fuzz_X.log. Prints the executions per harness at the
# end (from libFuzzer's final "Done N runs in S second(s)" line) and exits 1
# if any harness had a finding, 2 on a usage error.
set -uo pipefail

usage() { echo "usage: bash tools/fuzz.sh SECONDS harness-binary..." >&2; exit 2; }
[ $# -ge 2 ] || usage
secs=$1; shift
[[ "$secs" =~ ^[0-9]+$ ]] || usage
runs_wanted=${FUZZ_RUNS:-}
[ -z "$runs_wanted" ] || [[ "$runs_wanted" =~ ^[1-9][0-9]*$ ]] || usage

B=build
crashes="$B/fuzz-crashes"
logs="$B/fuzz-logs"
mkdir -p "$crashes" "$logs"
LIMITS=(-rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10)

declare -a summary=()
failed=0

for bin in "$@"; do
  name=$(basename "$bin")
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is not an executable harness (build it with make first)" >&2
    summary+=("$name: MISSING")
    failed=1
    continue
  fi
  log="$logs/$name.log"
  : >"$log"
  status="ok"

  # 1. Regression inputs: libFuzzer runs each file given as an argument once.
  regdir="native/fuzz/regressions/$name"
  nreg=0
  if [ -d "$regdir" ]; then
    mapfile -t regs < <(find "$regdir" -type f | sort)
    nreg=${#regs[@]}
    if [ "$nreg" -gt 0 ]; then
      echo "== $name: $nreg regression input(s)"
      # A hung regression must not hang the run: bound it (10 s per input + slack).
      if ! timeout $((nreg * 10 + 60)) "$bin" "${LIMITS[@]}" -artifact_prefix="$crashes/$name-regression-" \
           "${regs[@]}" >>"$log" 2>&1; then
        echo "fuzz: $name fails on a regression input (see $log)" >&2
        status="REGRESSION"
        failed=1
      fi
    fi
  fi

  # 2. Fuzzing, from the checked-in seeds plus what earlier runs found.
  runs="-"
  if { [ "$secs" -gt 0 ] || [ -n "$runs_wanted" ]; } && [ "$status" = "ok" ]; then
    corpus="$B/fuzz-corpus/$name"
    mkdir -p "$corpus"
    if [ -d "native/fuzz/corpus/$name" ]; then
      cp -n "native/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
    fi
    if [ -n "$runs_wanted" ]; then
      what="$runs_wanted executions"; stop=(-runs="$runs_wanted"); outer=()
    else
      # libFuzzer stops by itself at -max_total_time; the outer timeout only
      # catches a harness that hangs outside an input (it has -timeout inside).
      what="${secs}s"; stop=(-max_total_time="$secs"); outer=(timeout $((secs + 120)))
    fi
    echo "== $name: fuzzing $what (corpus $corpus, $(find "$corpus" -type f | wc -l) inputs)"
    start=$(date +%s)
    "${outer[@]}" "$bin" "${LIMITS[@]}" "${stop[@]}" -print_final_stats=1 \
        -artifact_prefix="$crashes/$name-" "$corpus" >>"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    done_line=$(grep -E '^Done [0-9]+ runs in' "$log" | tail -1)
    if [ -n "$done_line" ]; then
      runs=$(awk '{print $2}' <<<"$done_line")
    fi
    if [ "$rc" -ne 0 ] || [ -z "$done_line" ]; then
      echo "fuzz: $name found a problem (exit $rc); artifacts in $crashes/, log $log" >&2
      grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -5 >&2
      status="FINDING"
      failed=1
    fi
  fi
  summary+=("$name: $status, $nreg regression input(s), $runs executions in ${took:-0}s")
done

echo "== fuzz summary"
for line in "${summary[@]}"; do echo "  $line"; done
exit "$failed"
