#!/usr/bin/env bash
# Instructions per packet and per PDU, counted by callgrind: the same figures on any machine
# and under any load, where wall times on a shared 2-core guest spread by +-20% (see
# BENCHMARKS.md). What compare.sh measures in seconds, this counts in instructions, so that a
# change to a hot path can be judged in one run of each build.
#
#   benches/instructions.sh [WORKLOAD...]   workloads: modbus dnp3 s7 plant syn-flood
#                                           midstream-flood half-open (default: all)
#   PACKETS=200000 OUT=benches/out BIN=target/release/otsensor benches/instructions.sh
#
# Captures are compare.sh's, smaller (gencap, seed 1 scored, seed 2 learned as the clean
# baseline). Per workload, three runs of otsensor under valgrind --tool=callgrind:
#
#   dissect   otsensor dissect --format none: instructions per packet
#   json      otsensor dissect > /dev/null: the writer's instructions per PDU (json - dissect)
#   detect    otsensor detect against the baseline: instructions per packet, the fixed cost
#             of loading and verifying the baseline taken off (detect on the capture's bare
#             header), and scoring's per PDU (detect - dissect)
#
# Caveats: valgrind hides SHA-NI, so the baseline's checksum runs the portable SHA-256 (a
# fixed cost, taken off); callgrind counts instructions, not cache misses or stalls.
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${PACKETS:-200000}
out=${OUT:-benches/out}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(modbus dnp3 s7 plant syn-flood midstream-flood half-open)
command -v valgrind > /dev/null || { echo "instructions.sh needs valgrind" >&2; exit 1; }
mkdir -p "$out"
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p otsensor -p otsensor-benches --bins
fi
bin=${BIN:-target/release/otsensor}
gencap=target/release/gencap
[ -x "$gencap" ] || cargo build --release -q -p otsensor-benches --bin gencap

capture() { # capture WORKLOAD SEED -> path of the generated capture
  local w=$1 seed=$2 cap="$out/$1-$packets-s$2.pcap"
  if [ ! -f "$cap" ]; then
    case $w in
      modbus | dnp3 | s7 | plant) $gencap --proto "$w" --packets "$packets" --seed "$seed" -o "$cap" 2> /dev/null ;;
      *) $gencap --load "$w" --per-legit 9 --packets "$packets" --seed "$seed" -o "$cap" 2> /dev/null ;;
    esac
  fi
  echo "$cap"
}

count() { # count CMD... : instructions callgrind counted for the command (its stdout dropped)
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 > /dev/null |
    sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}

echo "otsensor $(git rev-parse --short HEAD) ($bin), $packets-packet captures, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| workload | packets | PDUs | dissect / packet | json / PDU | detect / packet | scoring / PDU | detect's fixed cost (M) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for w in "${workloads[@]}"; do
  cap=$(capture "$w" 1)
  case $w in
    modbus | dnp3 | s7 | plant) clean=$(capture "$w" 2) ;;
    *) clean=$(capture modbus 2) ;;
  esac
  baseline="$out/ibaseline-$w-$packets.json"
  [ -f "$baseline" ] || "$bin" learn --fresh -q --baseline "$baseline" "$clean"
  empty="$out/header-only.pcap"
  head -c 24 "$cap" > "$empty" # the pcap file header alone: no packets
  summary=$("$bin" dissect --format none --no-progress "$cap" 2>&1)
  n=$(echo "$summary" | sed -n 's/^otsensor: \([0-9]*\) packets.*/\1/p')
  pdus=$(echo "$summary" | sed -n 's/.*PDUs: \([0-9]*\).*/\1/p' | head -1)
  dissect=$(count "$bin" dissect --format none --no-progress -q "$cap")
  json=$(count "$bin" dissect --no-progress -q "$cap")
  detect=$(count "$bin" detect --no-progress -q --baseline "$baseline" "$cap")
  fixed=$(count "$bin" detect --no-progress -q --baseline "$baseline" "$empty")
  awk -v w="$w" -v n="$n" -v p="$pdus" -v d="$dissect" -v j="$json" -v t="$detect" -v f="$fixed" 'BEGIN {
    printf "| %s | %d | %d | %.0f | %.0f | %.0f | %.0f | %.1f |\n", w, n, p, d / n, (j - d) / p, (t - f) / n, (t - f - d) / p, f / 1e6
  }'
done
