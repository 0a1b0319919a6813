#!/usr/bin/env python3
"""Risk engine benchmarks: the same as `rsx bench risk` (prints one JSON object).

    python bench/risk.py            # the four targets at full size (1M users / 10M fills recovery)
    python bench/risk.py --quick    # a short smoke run
"""

import sys

from rsx_appliance.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "risk", *sys.argv[1:]]))
