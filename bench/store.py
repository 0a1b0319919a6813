#!/usr/bin/env python3
"""History store benchmarks: the same as `rsx bench store` (prints one JSON object).

    python bench/store.py all --backend both
"""

import sys

from rsx_appliance.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "store", *sys.argv[1:]]))
