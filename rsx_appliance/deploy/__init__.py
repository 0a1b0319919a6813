"""Deploy the exchange on bare metal: systemd units, tuning, kernel command line (specs/deploy.md).

Modules, one concern each:

- :mod:`.units`    the unit files: one per process, the tuning unit, the target
- :mod:`.bundle`   render a host bundle from the configuration and the host model
- :mod:`.install`  install a bundle into a root, and put the root back byte for byte
- :mod:`.verify`   ``rsx deploy check``: systemd-analyze verify, placement against the host
"""

from .errors import DeployError, DeployEnvironmentError, UninstallIncomplete

__all__ = ["DeployError", "DeployEnvironmentError", "UninstallIncomplete"]
