#!/usr/bin/env python3
"""History store ingest benchmark: the same as `rsx bench store` (prints one JSON object).

    python bench/store.py --backend both --pg-url postgresql://...
"""

import sys

from rsx_appliance.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "store", *sys.argv[1:]]))
