"""``python -P -m rsx_appliance.cli ARGS``: the `rsx` command, for child processes (rsx_appliance.launch)."""

import sys

from . import main

sys.exit(main())
