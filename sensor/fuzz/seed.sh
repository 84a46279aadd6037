#!/usr/bin/env bash
# Seeds the capture target's corpus with whole small captures (pcap and pcapng) from the
# bundled fixtures and the shared corpus.
# Usage: sensor/fuzz/seed.sh   (from anywhere)
set -u
cd "$(dirname "$0")"
root=../..
shared=$root/../shared/pcaps
mkdir -p corpus/capture
find "$root/pcaps" "$shared" -name '*.pcap*' -size -64k 2> /dev/null | while read -r f; do
  cp "$f" "corpus/capture/$(basename "$f")"
done
echo "corpora: capture=$(ls corpus/capture | wc -l)"
