"""NVIDIA devices on a host's PCI bus, from a listing of sysfs taken before any driver is installed.

The rollout must know whether a host has NVIDIA GPUs (and NVSwitches) before the driver exists, so it
reads what the kernel knows without one: /sys/bus/pci/devices/*/{vendor,class}. SCAN_COMMAND prints one
line per device, `ADDRESS VENDOR CLASS`; parse_scan turns that text into counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tritonfleet.errors import InputError

# POSIX sh, so that it runs on any host through a raw command (no Python needed on the host).
SCAN_COMMAND = (
    'for d in /sys/bus/pci/devices/*; do [ -r "$d/vendor" ] || continue; '
    'printf "%s %s %s\\n" "${d##*/}" "$(cat "$d/vendor")" "$(cat "$d/class")"; done'
)
NVIDIA_VENDOR = 0x10DE
# PCI base class 0x03 is a display controller (VGA 0x0300, 3D 0x0302: datacenter GPUs); NVSwitches
# show as bridges (0x0680).
_DISPLAY_BASE_CLASS = 0x03
_BRIDGE_OTHER = 0x0680
_LINE = re.compile(
    r"^(?P<address>[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])"
    r" 0x(?P<vendor>[0-9a-fA-F]{4}) 0x(?P<klass>[0-9a-fA-F]{6})$"
)


@dataclass(frozen=True)
class PciScan:
    gpus: tuple[str, ...]  # PCI addresses of NVIDIA display controllers
    nvswitches: tuple[str, ...]

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)


def parse_scan(text: str, source: str = "PCI scan") -> PciScan:
    gpus: list[str] = []
    switches: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        if match is None:
            shown = line if len(line) <= 60 else line[:59] + "…"
            raise InputError(source, f"line {number}", f"{shown!r} is not `ADDRESS 0xVENDOR 0xCLASS`")
        if int(match["vendor"], 16) != NVIDIA_VENDOR:
            continue
        klass = int(match["klass"], 16)
        if klass >> 16 == _DISPLAY_BASE_CLASS:
            gpus.append(match["address"].lower())
        elif klass >> 8 == _BRIDGE_OTHER:
            switches.append(match["address"].lower())
    return PciScan(tuple(gpus), tuple(switches))
