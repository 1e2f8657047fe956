"""Live runs of a recording script's workload: the real package, now, against the fake provider (or the script's
own wire-format server), each in its own process since instrumentations patch SDKs and OpenTelemetry globally. The
exports come back as a `Fixture` with the script's `EXPECTED`, to be billed like a recorded one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.processor.sources.recorded import Fixture

ROOT = Path(__file__).resolve().parents[3]


def live_fixture(script: str, source: str, server: str, tmp_path: Path) -> Fixture:
    """Run `scripts/record-spans/python/<script>.py`'s `workload(recorder, <server's URL>)` in a fresh interpreter;
    `server` is an expression on the fake provider `s` (`s.url`, `s.openai_base_url`, ...)."""
    out = tmp_path / f"{script}.live.json"
    code = "\n".join([
        "import json, sys",
        "sys.path.insert(0, 'scripts/record-spans/python')",
        f"import {script} as script",
        "from _harness import Recorder",
        "from costline.testing.fake_provider import FakeProviderServer",
        "recorder = Recorder()",
        "with FakeProviderServer() as s:",
        f"    script.workload(recorder, {server})",
        f"open({str(out)!r}, 'w').write(json.dumps({{'source': {source!r}, 'package': 'live', 'version': 'live',"
        " 'recorded_by': 'live', 'requests': recorder.requests, 'expected': script.EXPECTED}))",
    ])
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
    document = json.loads(out.read_text())
    return Fixture(out, document, [json.dumps(r).encode() for r in document["requests"]])
