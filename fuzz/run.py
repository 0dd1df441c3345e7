"""Run the fuzz targets for a bounded time (what `make fuzz` does):

    .venv/bin/python fuzz/run.py --seconds 60                 # each target for 60 s
    .venv/bin/python fuzz/run.py --seconds 10 --target shard  # one target

Each target runs in its own process, so a crash inside a C library (libjpeg, HDF5...) ends that
process and is reported rather than ending the run; every input is written to a file before it
runs, so an input that crashes or hangs the process is kept. A finding (an exception other than
the reader's own error, a crash, or an input running over --hang seconds) is saved under
--findings, the target starts again for the time left, and the exit status is 1; otherwise 0.
Turn each finding into a regular test (tests/test_robust_fuzz.py).
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 200  # hypothesis examples per call; the time limit is checked between calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="time per target")
    parser.add_argument("--target", choices=("photo", "shard"), action="append")
    parser.add_argument("--hang", type=float, default=10, help="seconds one input may take")
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--last", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.seconds, args.hang, args.last)
    found = 0
    for target in args.target or ["photo", "shard"]:
        found += _supervise(target, args)
    return 1 if found else 0


def _supervise(target: str, args: argparse.Namespace) -> int:
    """Run one target for --seconds in child processes, restarting after each finding; print
    the inputs tried and each distinct finding once. Returns the number of findings."""
    deadline = time.monotonic() + args.seconds
    inputs, findings = 0, {}
    with tempfile.TemporaryDirectory() as folder:
        last = Path(folder) / "last-input"
        while (left := deadline - time.monotonic()) > 1:
            argv = [sys.executable, __file__, "--child", target, "--seconds", f"{left:.1f}"]
            argv += ["--hang", str(args.hang), "--last", str(last)]
            child = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
            count = last.with_suffix(".count")
            if count.exists():
                inputs += int(count.read_text())
                count.unlink()
            if child.returncode == 0:
                continue
            kind = _kind(child.returncode, child.stderr)
            if kind not in findings:
                findings[kind] = _save(last, child.stderr, target, args.findings)
    print(f"{target}: {inputs} inputs in {args.seconds:.0f} s, {len(findings)} finding(s)")
    for kind, saved in findings.items():
        print(f"  {kind}: {saved} (+ .txt)")
    return len(findings)


def _kind(returncode: int, log: str) -> str:
    """A finding's kind, to report each once: the signal, a hang, or the exception raised."""
    if returncode < 0:
        return f"crash (signal {-returncode})"
    if "Timeout (" in log:
        return "hang"
    errors = [line for line in log.splitlines() if re.match(r"\w+(Error|Exception)\b", line)]
    return errors[-1][:120] if errors else f"exit status {returncode}"


def _save(last: Path, log: str, target: str, findings: Path) -> Path:
    """The input as NAME.bin and what the child printed (tracebacks, hypothesis's report) as
    NAME.txt."""
    data = last.read_bytes()
    findings.mkdir(parents=True, exist_ok=True)
    path = findings / f"{target}-{hashlib.sha256(data).hexdigest()[:16]}.bin"
    shutil.copyfile(last, path)
    path.with_suffix(".txt").write_text(log)
    return path


def _child(target: str, seconds: float, hang: float, last: Path) -> int:
    sys.path.insert(0, str(REPO))
    from fuzz.targets import TARGETS

    faulthandler.enable()  # a crash in C code still prints where Python was

    count = 0
    counter = last.with_suffix(".count")

    def record(data: bytes) -> None:
        nonlocal count
        count += 1
        last.write_bytes(data)
        counter.write_text(str(count))
        # Restarted per input: only one input running over `hang` seconds ends the process.
        faulthandler.dump_traceback_later(hang, exit=True)

    test = TARGETS[target](BATCH, record)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        test()
    faulthandler.cancel_dump_traceback_later()
    return 0


if __name__ == "__main__":
    sys.exit(main())
