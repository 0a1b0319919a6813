"""Host tuning for the appliance: read the host, check it, plan placement, apply and roll back.

specs/tuning.md is the contract. Modules, one concern each:

- :mod:`.host`       the host model, discovered from /proc and /sys under one root
- :mod:`.knobs`      the closed knob catalog and the read/compare/restore primitive
- :mod:`.profile`    operator profiles (profiles/*.toml, shipped as package data)
- :mod:`.topology`   the topology file (which processes, where the NIC is)
- :mod:`.plan`       topology + profile + host -> placement, IRQs, hugepages, cmdline, changes
- :mod:`.check`      pass / warn / fail / unsupported for every knob
- :mod:`.apply`      apply with a state file written first; rollback; crash recovery
- :mod:`.placement`  per-process CPU affinity, memory policy and cpuset at process start
- :mod:`.jitter`     per-CPU gap measurement (native/src/jitter.c)
"""

from .errors import (ApplyError, PlacementError, PlanError, PlanFileError, ProfileError,
                     RollbackError, TopologyError, TuneEnvironmentError, TuneError, TuneInputError,
                     UnknownKnobError)

__all__ = ["TuneError", "TuneInputError", "TopologyError", "ProfileError", "UnknownKnobError",
           "PlanFileError", "PlanError", "ApplyError", "RollbackError", "PlacementError",
           "TuneEnvironmentError"]
