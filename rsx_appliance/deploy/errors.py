"""Exceptions of ``rsx deploy``; each carries the CLI exit code it maps to (specs/deploy.md 1).

::

    RsxError
    ├── DeployError (ValueError)     exit 2: a bad option, bundle, host, or a second install
    ├── UninstallIncomplete          exit 1: installed files changed since install were kept
    └── DeployEnvironmentError       exit 3: the root refused a write
"""

from __future__ import annotations

from ..errors import RsxError

__all__ = ["DeployError", "UninstallIncomplete", "DeployEnvironmentError"]


class DeployError(RsxError, ValueError):
    exit_code = 2


class UninstallIncomplete(RsxError):
    """Some installed files were changed since install and were kept; the record stays for --force."""

    exit_code = 1


class DeployEnvironmentError(RsxError):
    exit_code = 3
