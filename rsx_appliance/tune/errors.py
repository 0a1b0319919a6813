"""Exceptions of the tuning package; each carries the CLI exit code it maps to.

::

    RsxError
    └── TuneError
        ├── TuneInputError (ValueError)      exit 2: a bad file, list or option
        │   ├── TopologyError                the topology file
        │   ├── ProfileError                 a profile (shipped, /etc/rsx/tuning, or a path)
        │   ├── UnknownKnobError             a knob id not in the catalog (or not settable)
        │   └── PlanFileError                a saved plan that is malformed or from another host
        ├── PlanError                        exit 1: the host cannot hold the topology
        ├── ApplyError                       exit 1: a write or verify failed; everything was rolled back
        ├── RollbackError                    exit 1: a value could not be restored; the state is kept
        ├── PlacementError                   exit 1: no applied plan, or no such process in it
        └── TuneEnvironmentError             exit 3: the root is unreadable, or the kernel refused
"""

from __future__ import annotations

from ..errors import RsxError

__all__ = ["TuneError", "TuneInputError", "TopologyError", "ProfileError", "UnknownKnobError",
           "PlanFileError", "PlanError", "ApplyError", "RollbackError", "PlacementError",
           "TuneEnvironmentError"]


class TuneError(RsxError):
    exit_code = 1


class TuneInputError(TuneError, ValueError):
    exit_code = 2


class TopologyError(TuneInputError):
    """The topology file is malformed: the message names the file, the key and the problem."""


class ProfileError(TuneInputError):
    """A tuning profile is malformed or cannot be found."""


class UnknownKnobError(TuneInputError):
    """A knob id that is not in the catalog, or that a profile may not set."""


class PlanFileError(TuneInputError):
    """A saved plan (``plan --json``) is malformed or was made for another host."""


class PlanError(TuneError):
    """The host cannot hold the topology (not enough cores, unknown node...)."""


class ApplyError(TuneError):
    """A change failed to write or verify; every change already made was rolled back."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RollbackError(TuneError):
    """A value could not be restored; the state file is kept so rollback can be retried."""


class PlacementError(TuneError):
    """No applied plan, or the plan has no such process."""


class TuneEnvironmentError(TuneError):
    exit_code = 3
