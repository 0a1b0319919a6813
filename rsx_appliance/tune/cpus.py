"""CPU lists and masks in the kernel's two text formats.

``cpulist`` is the human format of ``/sys/devices/system/cpu/online`` and
``smp_affinity_list`` (``"0-3,8,10-11"``); ``cpumask`` is the hex format of
``smp_affinity``, ``default_smp_affinity`` and ``workqueue/cpumask``: 32-bit
chunks, most significant first, separated by commas, the first chunk as wide
as the bits left over (``bitmap_string()`` in lib/vsprintf.c), so a 2-CPU
machine prints ``3`` and a 40-CPU one ``ff,ffffffff``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import TuneInputError

__all__ = ["parse_list", "format_list", "parse_mask", "format_mask"]


def parse_list(text: str | None) -> list[int]:
    """``"0-3,8"`` -> ``[0, 1, 2, 3, 8]`` (sorted, unique). Empty or None -> ``[]``.

    Raises :class:`TuneInputError` for anything that is not a CPU list.
    """
    cpus: set[int] = set()
    text = (text or "").strip()
    if not text:
        return []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise TuneInputError(f"not a CPU list: {text!r} (expected e.g. 0-3,8)") from None
        if a < 0 or b < a:
            raise TuneInputError(f"not a CPU list: {text!r} (bad range {part!r})")
        cpus.update(range(a, b + 1))
    return sorted(cpus)


def format_list(cpus: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 8]`` -> ``"0-3,8"``; the empty set -> ``""``."""
    out: list[str] = []
    run: list[int] = []
    for c in sorted(set(cpus)):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def parse_mask(text: str | None) -> list[int]:
    """``"ff,ffffffff"`` -> CPUs 0..39. Raises :class:`TuneInputError` on non-hex text."""
    text = (text or "").strip().replace(",", "")
    if not text:
        return []
    try:
        value = int(text, 16)
    except ValueError:
        raise TuneInputError(f"not a CPU mask: {text!r}") from None
    return [i for i in range(value.bit_length()) if value >> i & 1]


def format_mask(cpus: Iterable[int], nr_cpu_ids: int) -> str:
    """The kernel's text for a mask over ``nr_cpu_ids`` bits (as it reads back after a write)."""
    value = 0
    for c in cpus:
        if c >= nr_cpu_ids:
            raise TuneInputError(f"CPU {c} is beyond nr_cpu_ids={nr_cpu_ids}")
        value |= 1 << c
    chunks = []
    bits = nr_cpu_ids
    while bits > 0:
        width = bits % 32 or 32
        chunk = value >> (bits - width) & ((1 << width) - 1)
        chunks.append(f"{chunk:0{(width + 3) // 4}x}")
        bits -= width
    return ",".join(chunks) if chunks else "0"
