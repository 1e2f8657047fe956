"""What the README and docs say about the code is checked against the code: rule and alert counts, the docs table,
the sub-commands, the provider inference table, and what `make demo` installs."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from costline.instrumentation.openai.providers import _HOST_SUFFIXES, provider_for

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")
RULES = ROOT / "dashboards" / "generated" / "prometheus"


def _rules() -> list[dict]:
    return [rule for path in sorted(RULES.glob("*.yaml"))
            for group in yaml.safe_load(path.read_text("utf-8"))["groups"] for rule in group["rules"]]


def test_the_readme_counts_the_generated_rules():
    rules = _rules()
    recording = sum("record" in rule for rule in rules)
    alerting = sum("alert" in rule for rule in rules)
    claim = re.search(r"\((\d+) rules: (\d+) recording rules and (\d+) alerting\s+rules\)", README)
    assert claim, "the README's tour no longer says how many rules promtool finds"
    assert tuple(map(int, claim.groups())) == (len(rules), recording, alerting)


def test_the_readme_and_the_runbooks_name_every_alert():
    dashboards_doc = (ROOT / "docs" / "dashboards.md").read_text("utf-8")
    for name in {rule["alert"] for rule in _rules() if "alert" in rule}:
        assert f"`{name}`" in README, name
        assert f"### {name}\n" in dashboards_doc, name


def test_the_readme_links_every_doc():
    row = next(line for line in README.splitlines() if line.startswith("| `docs/` |"))
    linked = set(re.findall(r"\(docs/([\w-]+\.md)\)", row))
    assert linked == {path.name for path in (ROOT / "docs").glob("*.md")}


def _sub_commands() -> set[str]:
    from costline.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_architecture_lists_every_sub_command():
    text = " ".join((ROOT / "docs" / "architecture.md").read_text("utf-8").split())
    paragraph = text[text.index("The `costline` console script"):][:600]
    for command in _sub_commands():
        assert f"`{command}`" in paragraph or f"`costline {command}`" in paragraph, command


def _provider_rows() -> list[tuple[str, str]]:
    doc = (ROOT / "docs" / "attributes.md").read_text("utf-8")
    section = doc[doc.index("## Provider inference (openai SDK)"):doc.index("## Ownership attributes")]
    return re.findall(r"^\| host suffix `([^`]+)` \| `([^`]+)`", section, re.MULTILINE)


def test_the_provider_table_is_the_code_s():
    assert _provider_rows() == list(_HOST_SUFFIXES)


@pytest.mark.parametrize(("host", "port", "azure", "provider"), [
    ("api.groq.com", None, False, "groq"),
    ("eu.groq.com", None, False, "groq"),
    ("myres.openai.azure.com", None, False, "azure.ai.openai"),
    ("anything.example", None, True, "azure.ai.openai"),
    ("ollama.internal", None, False, "ollama"),
    ("gpu-box", 11434, False, "ollama"),
    ("localhost", 8000, False, "vllm"),
    ("vllm.svc.cluster.local", 443, False, "vllm"),
    ("gpu-box", 8000, False, "openai"),
    ("llm.example", 443, False, "openai"),
])
def test_the_provider_table_s_other_rows(host, port, azure, provider):
    assert provider_for(host, port, azure) == provider


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_needs_no_other_python_and_no_debian_package():
    """`make demo` on Debian 12 (Python 3.11, no 3.12): everything it would run, prerequisites included."""
    dry = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "demo/run.py" in dry
    for needed_only_by_tests in ("python3.12", "venv-focus", "focus-validator", "apt-get", "install-debian-packages",
                                 "install-docker-compose", ".venv-min"):
        assert needed_only_by_tests not in dry, needed_only_by_tests
