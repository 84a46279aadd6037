#!/usr/bin/env bash
# Times otsensor against the read limit on a large generated capture, in one run, and prints
# the ratios. Usage: benches/compare.sh [modbus|dnp3|s7]   (PACKETS=3000000 by default)
#
#   read limit   pcap-parser's streaming reader walking the records and nothing else
#   dissect      otsensor dissect --format none (decode everything, write nothing)
#   json         otsensor dissect > /dev/null   (decode and write JSON lines)
#   suricata     suricata -r with its Modbus/DNP3 parsers and no rules (when installed)
set -euo pipefail
cd "$(dirname "$0")/.."
proto=${1:-modbus}
packets=${PACKETS:-3000000}
out=${OUT:-benches/out}
mkdir -p "$out"
cargo build --release -q -p otsensor -p otsensor-benches --bins
cap="$out/$proto-$packets.pcap"
[ -f "$cap" ] || target/release/gencap --proto "$proto" --packets "$packets" -o "$cap"
cat "$cap" > /dev/null # warm the page cache so that every contender reads from memory

best() { # best wall time of three runs of "$@", in seconds
  local best=999999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null 2>&1
    t1=$(date +%s.%N)
    best=$(echo "$t1 - $t0" | bc -l | awk -v b="$best" '{print ($1 < b) ? $1 : b}')
  done
  echo "$best"
}

n=$(target/release/readlimit "$cap" | sed 's/.*"packets":\([0-9]*\).*/\1/')
pdus=$(target/release/otsensor dissect --format none --no-progress "$cap" 2>&1 | sed -n 's/.*PDUs: \([0-9]*\).*/\1/p')
t_read=$(best target/release/readlimit "$cap")
t_none=$(best target/release/otsensor dissect --format none --no-progress -q "$cap")
t_json=$(best target/release/otsensor dissect --no-progress -q "$cap")
printf '%s: %s packets, %s PDUs (%s)\n' "$proto" "$n" "$pdus" "$(du -h "$cap" | cut -f1)"
printf '%-10s %9s %14s %12s\n' contender seconds packets/s "vs read"
row() { printf '%-10s %9.3f %14.0f %11.1f%%\n' "$1" "$2" "$(echo "$n / $2" | bc -l)" "$(echo "100 * $t_read / $2" | bc -l)"; }
row "read" "$t_read"
row "dissect" "$t_none"
row "json" "$t_json"
printf 'json: %.2f million PDUs/s\n' "$(echo "$pdus / $t_json / 1000000" | bc -l)"
if command -v suricata > /dev/null; then
  cfg="$out/suricata.yaml"
  cat > "$cfg" <<YAML
%YAML 1.1
---
default-log-dir: $out
app-layer:
  protocols:
    modbus: { enabled: yes, detection-ports: { dp: 502 } }
    dnp3: { enabled: yes, detection-ports: { dp: 20000 } }
outputs: []
logging: { default-log-level: error, outputs: [ { console: { enabled: yes } } ] }
YAML
  t_suri=$(best suricata -c "$cfg" -r "$cap" -k none --runmode single -S /dev/null)
  row "suricata" "$t_suri"
  printf 'otsensor dissect is %.1fx faster than suricata (single-threaded, no rules)\n' "$(echo "$t_suri / $t_none" | bc -l)"
fi
