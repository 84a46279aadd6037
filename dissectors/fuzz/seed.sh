#!/usr/bin/env bash
# Seeds the fuzz corpora of the protocol targets from the TCP payloads of real PDUs (via
# tshark); sensor/fuzz/seed.sh seeds the capture target.
# Usage: dissectors/fuzz/seed.sh   (from anywhere; needs tshark for the protocol targets)
set -u
cd "$(dirname "$0")"
root=../..
shared=$root/../shared/pcaps
mkdir -p corpus/modbus corpus/dnp3_link corpus/dnp3_app corpus/s7
payloads() { # payloads() FILTER TARGET: one corpus file per distinct TCP/UDP payload
  find "$root/pcaps" "$shared" -name '*.pcap*' 2> /dev/null | while read -r f; do
    tshark -r "$f" -Y "$1" -T fields -e tcp.payload -e udp.payload 2> /dev/null | tr -d '\t' | head -300
  done | sort -u | while read -r hex; do
    if [ -n "$hex" ]; then echo "$hex" | xxd -r -p > "corpus/$2/$(echo "$hex" | sha1sum | cut -c1-16)"; fi
  done
}
if command -v tshark > /dev/null; then
  payloads mbtcp modbus
  payloads dnp3 dnp3_link
  payloads s7comm s7
fi
echo "corpora: $(for d in corpus/*; do printf '%s=%s ' "${d#corpus/}" "$(ls "$d" | wc -l)"; done)"
