"""The one live Node test: the Vercel AI SDK recorder (`scripts/record-spans/node/vercel_ai.cjs`, `ai` 6.x from the
committed lockfile, installed by `make test-deps`) run for real with the machine's `node` against the fake provider,
its OTLP/HTTP JSON exporter pointed at a real `costline serve`: each of the six API calls is billed once, at list
price, and the outer `ai.generateText`/`ai.streamText`/`ai.embed` spans bill nothing."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from tests.processor.served import serve, serving, stop  # noqa: F401 - `serving` is a fixture
from tests.processor.sources.node_workload import CLAUDE, EMBEDDING, GPT, nano

RECORDER = Path(__file__).resolve().parents[3] / "scripts" / "record-spans" / "node" / "record.py"
PACKAGES = RECORDER.parent / "vercel-ai" / "node_modules"

pytestmark = pytest.mark.skipif(shutil.which("node") is None,
                                reason="no `node` on PATH: the live Node test needs Node.js 20+ (Debian's nodejs)")


def _recorder():
    spec = importlib.util.spec_from_file_location("record_node_spans", RECORDER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_vercel_ai_sdk_bills_each_call_once_through_costline_serve(tmp_path, serving):  # noqa: F811
    assert PACKAGES.is_dir(), f"{PACKAGES} is missing: `make test-deps` runs `npm ci` there"
    (tmp_path / "costline.yaml").write_text("timezone: UTC\n")
    served = serve(tmp_path, f"sqlite:///{tmp_path}/ledger.db")
    serving.append(served)
    _recorder().run("vercel-ai", otlp_url=served.otlp_url)  # returns once its exporter has flushed: acknowledged
    rows = {(r["provider"], r["model"], r["operation"]): r for r in served.usage(group_by="provider,model,operation")}
    assert {key: rows[key]["requests"] for key in rows} == {GPT: 3, CLAUDE: 2, EMBEDDING: 1}
    expected_nano = {
        GPT: nano(GPT, input=1000, output=50) + nano(GPT, input=800, output=40)
        + nano(GPT, input=500, cache_read=1500, output=30),
        CLAUDE: nano(CLAUDE, input=500, cache_read=2000, cache_write=500, output=60) + nano(CLAUDE, input=700, output=20),
        EMBEDDING: nano(EMBEDDING, input=64),
    }
    assert {key: round(float(rows[key]["cost_usd"]) * 1e9) for key in rows} == expected_nano
    assert stop(served) == 0, served.log.read_text()
