#!/usr/bin/env bash
# One reproducible comparison, in one run, on the same generated captures: the read limit,
# otsensor (dissect, detect, run --read with 1 and 2 workers) and Suricata 7 with its Modbus
# and DNP3 parsers and the small rule set of benches/suricata/ (when installed: see
# ../shared/tools/install-suricata.sh). Prints a Markdown table per capture, for BENCHMARKS.md.
#
#   benches/compare.sh [WORKLOAD...]     workloads: modbus dnp3 s7 plant syn-flood
#                                        midstream-flood half-open long-lived (default: all)
#   PACKETS=1000000 RUNS=5 LONG_RUNS=3 FLOWS=1000000 OUT=benches/out benches/compare.sh
#
# Each contender runs RUNS times under /usr/bin/time -v: the median wall time and its spread
# (min-max), packets/s at the median, the ratio of its time to `otsensor detect`'s, and the
# largest peak RSS of the runs.
#
#   read        pcap-parser's streaming reader walking the records and nothing else
#   dissect     otsensor dissect --format none (decode everything, write nothing)
#   json        otsensor dissect > /dev/null (decode and write one JSON line per PDU)
#   detect      otsensor detect against a baseline learned from clean traffic (another
#               seed of the same plant), alerts to /dev/null: one thread
#   run-1/-2    otsensor run --read with 1 and 2 workers, the same baseline, no learning
#   suricata    suricata -r --runmode single -k none -S benches/suricata/ics.rules
#
# modbus, dnp3 and s7 are one protocol's polling each (gencap --proto), so that the json line
# under each table gives `dissect`'s JSON PDUs/s per protocol; each is scored against a
# baseline learned from another seed of the same protocol.
# Flood captures interleave the plant's Modbus polling with 9 flood frames per legitimate
# frame, each flood flow from a new source. long-lived holds FLOWS concurrent connections;
# otsensor runs it with --max-flows above FLOWS so that every flow is tracked at once.
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${PACKETS:-1000000}
runs=${RUNS:-5}
long_runs=${LONG_RUNS:-3} # the long-lived capture is five times larger
flows=${FLOWS:-1000000}
out=${OUT:-benches/out}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(modbus dnp3 s7 plant syn-flood midstream-flood half-open long-lived)
mkdir -p "$out"
cargo build --release -q -p otsensor -p otsensor-benches --bins
bin=target/release

capture() { # capture WORKLOAD SEED -> path of the generated capture
  local w=$1 seed=$2 cap
  case $w in
    modbus | dnp3 | s7 | plant) cap="$out/$w-$packets-s$seed.pcap"
      [ -f "$cap" ] || $bin/gencap --proto "$w" --packets "$packets" --seed "$seed" -o "$cap" 2> /dev/null ;;
    long-lived) local n=$((3 * flows + 2 * flows))
      cap="$out/$w-$flows-s$seed.pcap"
      [ -f "$cap" ] || $bin/gencap --load long-lived --flows "$flows" --packets "$n" --seed "$seed" -o "$cap" 2> /dev/null ;;
    *) cap="$out/$w-$packets-s$seed.pcap"
      [ -f "$cap" ] || $bin/gencap --load "$w" --per-legit 9 --packets "$packets" --seed "$seed" -o "$cap" 2> /dev/null ;;
  esac
  echo "$cap"
}

measure() { # measure NAME CMD... : RUNS runs; sets t_med t_min t_max rss_mb
  local name=$1
  shift
  local times=() rss=0 i
  for ((i = 0; i < runs; i++)); do
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$out/time.txt" "$@" > /dev/null 2> "$out/$name.stderr" || {
      echo "$name failed: $(tail -3 "$out/$name.stderr")" >&2
      return 1
    }
    t1=$(date +%s%N)
    # Wall time in ns from date (time -v rounds to 10 ms); time -v for the peak RSS.
    times+=("$(echo "scale=4; ($t1 - $t0) / 1000000000" | bc)")
    local kb
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/time.txt")
    [ "$kb" -gt "$rss" ] && rss=$kb
  done
  read -r t_min t_med t_max < <(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR] = $1} END {printf "%.3f %.4f %.3f\n", a[1], a[int((NR + 1) / 2)], a[NR]}')
  rss_mb=$(echo "$rss / 1024" | bc)
}

echo "otsensor $(git rev-parse --short HEAD), $(nproc) CPUs, $runs runs each, $(date -u '+%Y-%m-%d %H:%M UTC')"
for w in "${workloads[@]}"; do
  cap=$(capture "$w" 1)
  case $w in
    dnp3 | s7 | plant) clean=$(capture "$w" 2) ;;
    long-lived) clean=$(capture modbus 2) ;;
    *) clean=$(capture modbus 2) ;;
  esac
  extra=()
  runs=${RUNS:-5}
  [ "$w" = long-lived ] && extra=(--max-flows $((flows + flows / 16))) && runs=$long_runs
  cat "$cap" > /dev/null # the page cache: every contender reads from memory
  baseline="$out/baseline-$w.json"
  $bin/otsensor learn --fresh -q --baseline "$baseline" "$clean"
  n=$($bin/readlimit "$cap" | sed 's/.*"packets":\([0-9]*\).*/\1/')
  summary=$($bin/otsensor dissect --format none --no-progress "${extra[@]}" "$cap" 2>&1)
  pdus=$(echo "$summary" | sed -n 's/.*PDUs: \([0-9]*\).*/\1/p')
  flowline=$(echo "$summary" | sed -n 's/^ *flows: \([0-9]*\) .*evicted \([0-9]*\).*/\1 flows, \2 evicted/p')
  echo
  echo "### $w: $n packets, $pdus PDUs, $flowline ($(du -h "$cap" | cut -f1)); $runs runs"
  echo
  echo "| contender | median s | spread s | packets/s | time / detect | peak RSS MB |"
  echo "|---|---:|---:|---:|---:|---:|"
  declare -A T=() R=()
  rows=(read dissect json detect run-1 run-2)
  measure read $bin/readlimit "$cap" && T[read]=$t_med R[read]="$t_min-$t_max $rss_mb"
  measure dissect $bin/otsensor dissect --format none --no-progress -q "${extra[@]}" "$cap" && T[dissect]=$t_med R[dissect]="$t_min-$t_max $rss_mb"
  measure json $bin/otsensor dissect --no-progress -q "${extra[@]}" "$cap" && T[json]=$t_med R[json]="$t_min-$t_max $rss_mb"
  measure detect $bin/otsensor detect --no-progress -q --baseline "$baseline" "${extra[@]}" "$cap" && T[detect]=$t_med R[detect]="$t_min-$t_max $rss_mb"
  for k in 1 2; do
    cp "$baseline" "$out/run-$k.json" # run may checkpoint its baseline
    measure run-$k $bin/otsensor run -q --read "$cap" --baseline "$out/run-$k.json" --learn-for 0s --workers $k \
      "${extra[@]}" && T[run-$k]=$t_med R[run-$k]="$t_min-$t_max $rss_mb"
  done
  if command -v suricata > /dev/null; then
    rows+=(suricata)
    mkdir -p "$out/suricata"
    rm -f "$out/suricata/eve.json" # eve appends: the count below is over all runs
    measure suricata suricata -c benches/suricata/suricata.yaml -S benches/suricata/ics.rules -r "$cap" -k none \
      --runmode single -l "$out/suricata" && T[suricata]=$t_med R[suricata]="$t_min-$t_max $rss_mb"
  fi
  for r in "${rows[@]}"; do
    [ -n "${T[$r]:-}" ] || { echo "| $r | failed | | | | |"; continue; }
    read -r spread rss <<< "${R[$r]}"
    printf '| %s | %.3f | %s | %.0f | %.2f | %s |\n' "$r" "${T[$r]}" "$spread" "$(echo "$n / ${T[$r]}" | bc -l)" \
      "$(echo "${T[$r]} / ${T[detect]}" | bc -l)" "$rss"
  done
  printf '\njson: %.2f M PDUs/s.' "$(echo "$pdus / ${T[json]} / 1000000" | bc -l)"
  [ -n "${T[suricata]:-}" ] && printf ' otsensor detect: %.1f times Suricata'"'"'s packets/s; %.0f%% of the read limit.' \
    "$(echo "${T[suricata]} / ${T[detect]}" | bc -l)" "$(echo "100 * ${T[read]} / ${T[detect]}" | bc -l)"
  [ -n "${T[suricata]:-}" ] && printf ' Suricata alerts per run: %s.' \
    "$(($(grep -c '"event_type":"alert"' "$out/suricata/eve.json" || true) / runs))"
  echo
  unset T R
done
