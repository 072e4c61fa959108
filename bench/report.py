"""What every benchmark's report shares: the machine line, the command, BENCHMARKS.md sections.

Each benchmark owns one section of BENCHMARKS.md between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` and rewrites only that one, so `make bench` can run them one by one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = ROOT / "BENCHMARKS.md"

INTRO = """# Benchmarks

`make bench` runs every benchmark (`kefu bench`; `kefu bench nlu` or `kefu bench rest` runs
one) from the repository root, each measuring a baseline in the same run, and rewrites its own
section below. These machines are shared and have 2 cores, so absolute numbers move from run to
run: compare with the baseline of the same run.

"""


def now() -> str:
    """The run's date, to the minute, in UTC."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine(loadavg: tuple[float, float, float] | None = None) -> str:
    """CPUs, CPU model, Python, kernel and the load average before the run (taken now when
    not given)."""
    ncpu = len(os.sched_getaffinity(0))  # what `nproc` prints
    load = ", ".join(f"{x:.2f}" for x in (loadavg or os.getloadavg()))
    return (
        f"{ncpu} CPUs (`nproc`), {cpu_model()}; Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average before the run: {load} "
        "(other work on the machine shows here)"
    )


def command_line(part: str, script: str) -> str:
    """How this run was started: `make bench`, `kefu bench PART` or the script itself."""
    extra = shlex.join(a for a in sys.argv[1:] if a != "--")
    if os.environ.get("MAKELEVEL"):
        cmd = "make bench"
    elif "hub.cli" in sys.modules:  # `kefu bench` runs the script through runpy
        cmd = f"kefu bench {part}"
    else:
        python = os.path.relpath(sys.executable, Path.cwd())
        cmd = f"{python} {script}"
    return f"{cmd} {extra}".strip()


def write_section(name: str, section: str) -> None:
    """Replace the section ``name`` of BENCHMARKS.md (appended when missing)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{section}{end}"
    text = RESULTS_FILE.read_text() if RESULTS_FILE.exists() else INTRO
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS_FILE.write_text(text)
