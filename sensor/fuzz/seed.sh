#!/usr/bin/env bash
# Seeds the corpora of the sensor's fuzz targets: whole small captures (pcap and pcapng) of
# the bundled fixtures and the shared corpus for `capture`, and the committed seeds
# (sensor/fuzz/seeds/<target>/) for every target.
# Usage: sensor/fuzz/seed.sh   (from anywhere)
set -u
cd "$(dirname "$0")"
root=../..
shared=$root/../shared/pcaps
mkdir -p corpus/capture
find "$root/pcaps" "$shared" -name '*.pcap*' -size -64k 2> /dev/null | while read -r f; do
  cp "$f" "corpus/capture/$(basename "$f")"
done
for d in seeds/*/; do
  t=$(basename "$d")
  mkdir -p "corpus/$t"
  cp "$d"* "corpus/$t/"
done
echo "corpora: $(for d in corpus/*; do printf '%s=%s ' "${d#corpus/}" "$(ls "$d" | wc -l)"; done)"
