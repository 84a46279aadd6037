"""Prints the body of an HTTP GET (5 s timeout); exit status 1 on any error.

Usage: fetch.py URL. Used by the live test to reach 127.0.0.1 inside a network namespace.
"""

import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode("utf-8", "replace"))
except Exception as e:
    print(f"fetch {sys.argv[1]}: {e}", file=sys.stderr)
    sys.exit(1)
