"""`make demo`, the main job, run for real (short): it must finish on its own, exit 0 and print every part of its
report from the ledger — the over-budget team, the most restrictive budget per key, the unpriced model — then the
guard's refusals beside the processor's violation count, and the reconciliation of the provider's usage report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "demo" / "run.py"


@pytest.fixture(scope="module")
def demo_output() -> str:
    # Research's team budget ($0.25) is blown after ~11 of its o4-mini calls; on a loaded 2-core machine the
    # workload manages 2-3 a second, so 10 s leaves a margin that 4 s did not.
    result = subprocess.run([sys.executable, str(DEMO), "--duration", "10"], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_demo_runs_to_its_report(demo_output):
    out = demo_output
    for section in ("Spend per team and model", "Budget burn", "Most restrictive budget per user and key",
                    "Unpriced models", "Where to look next"):
        assert section in out, f"report lacks {section!r}:\n{out}"
    report = out[out.index("Spend per team and model"):]
    assert "OVER BUDGET" in report  # the research team's budget is set to be blown
    assert "acme-llama-70b" in report and "UNPRICED" in report  # never shown as $0
    assert "key alice-laptop" in report and "bound by key acme/search/alice/alice-laptop daily" in report
    assert "$-" not in report  # negative remaining budgets read -$x



def test_demo_counts_priced_calls_and_refused_attempts_apart(demo_output):
    """The live line's "calls priced" leaves the unpriced model's calls out, and the spend table counts an attempt
    the guard refused apart from the calls (it sent nothing)."""
    import re

    live = re.findall(r"(\d+) calls priced, (\d+) unpriced, (\d+) without usage, (\d+) refused or failed",
                      demo_output)
    assert live and int(live[-1][1]) > 0, demo_output[:3000]  # the self-hosted model is never priced
    table = _section(demo_output, "Spend per team and model")
    assert table.splitlines()[1].split()[2:4] == ["calls", "refused"], table
    refused = {(cells[0], cells[1]): int(cells[3]) for cells in (line.split() for line in table.splitlines()[2:])
               if len(cells) == 7}
    # The guarded governance run's attempts were refused before anything was sent.
    assert refused[("research", "o4-mini")] >= 1 and refused[("support", "claude-sonnet-4-5")] >= 1, table


def test_demo_shows_calls_without_usage_beside_unpriced_ones(demo_output):
    """research's streams are read without `include_usage`: answered, cost unknown, shown as such (never $0) in
    the live line, the spend table, their own section and the team's statement."""
    import re

    live = re.findall(r"(\d+) without usage", demo_output)
    assert live and int(live[-1]) > 0, demo_output[:3000]
    table = _section(demo_output, "Spend per team and model").split("\n\n", 1)[0]
    (row,) = [line for line in table.splitlines() if line.split()[:2] == ["research", "gpt-4o-mini-2024-07-18"]]
    assert row.rstrip().endswith("NO USAGE") and "$0.0000" not in row, table
    missing = _section(demo_output, "Calls without usage")
    assert re.search(r"research\s+gpt-4o-mini-2024-07-18\s+\d+ requests without usage", missing), missing
    assert "Unpriced models" in demo_output and "acme-llama-70b" in _section(demo_output, "Unpriced models")
    research = _section(demo_output, "Chargeback this month").split("acme/research", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"\d+ calls? without usage: cost unknown, not charged", research), research


def _section(out: str, title: str) -> str:
    start = out.index(title)
    return out[start : out.index("─" * 20, start)]


def test_demo_shows_the_guard_and_the_reconciliation(demo_output):
    governance = _section(demo_output, "Governance")
    assert "unguarded  openai/o4-mini" in governance and "sent" in governance
    assert ("guarded    openai/o4-mini                 refused: costline.BudgetExceeded (team acme/research monthly)"
            in governance)
    assert ("guarded    anthropic/claude-sonnet-4-5    refused: costline.ModelNotAllowed (team acme/support "
            "anthropic allow)" in governance)
    assert "the provider received 0 requests from the guarded run" in governance
    violations = _section(demo_output, "Policy violations counted by the processor")
    (violation,) = [line for line in violations.splitlines() if "costline_policy_violations_total{" in line]
    assert 'model="claude-sonnet-4-5"' in violation and 'team="support"' in violation
    assert float(violation.rsplit(" ", 1)[1]) >= 1  # the unguarded call (the guarded attempt may count too)

    rows = {}
    for line in _section(demo_output, "Reconciliation").splitlines():
        cells = line.split()
        if len(cells) >= 8 and cells[0][:2] == "20":  # day, owner kind, owner, model, provider, ledger, drift, untracked
            rows[(" ".join(cells[1:-5]), cells[-5])] = [float(c) for c in cells[-4:]]
    for owner, model in (("key alice-laptop", "gpt-4o"), ("key alice-laptop", "gpt-4o-mini"),
                         ("key research-batch", "o4-mini")):
        provider, ledger, drift, untracked = rows[(owner, model)]
        assert provider > 0 and drift == 0 and untracked == 0, (owner, model, rows)  # every span reached the ledger
    assert rows[("team search", "gpt-4o-mini")][3] > 0  # the cron job: untracked spend of its key's owner
    (notebook,) = [v for (owner, _), v in rows.items() if owner.startswith("untracked")]
    assert notebook[3] > 0


def test_demo_bills_each_team_a_statement_that_adds_up(demo_output):
    from decimal import Decimal

    chargeback = _section(demo_output, "Chargeback this month")
    teams = {line.split()[0]: line for line in chargeback.splitlines() if line.startswith("  acme/")}
    assert set(teams) == {"acme/research", "acme/search", "acme/support"}, chargeback
    assert "[value-based]" in teams["acme/support"]  # charged per resolved ticket, not for its tokens
    assert "value based ticket_resolved" in chargeback and " x $0.02" in chargeback
    totals = [Decimal(line.split()[1].replace(",", "")) for line in chargeback.splitlines()
              if line.strip().startswith("total ")]
    grand = Decimal(chargeback.split("TOTAL", 1)[1].split()[0].replace(",", ""))
    assert len(totals) == 3 and sum(totals) == grand  # rounded once, to the cent, and the teams add up exactly
    assert "one printable page per team:" in chargeback


def test_demo_shows_a_team_admin_at_work_and_an_approval(demo_output):
    """The team admin's changes through the admin API (one held to the team's budget), the guard refusing a model
    allowed only on approval, the request and the org admin's approval with an expiry, then the call sent; the
    audit log names who did each."""
    section = _section(demo_output, "Delegated administration and an approval")
    lines = [line.strip() for line in section.splitlines()[1:] if line.strip()]
    assert lines[0].startswith("team admin: create user bob") and lines[0].endswith("201 user:bob version 1")
    assert lines[1].startswith("team admin: create key bob-laptop") and " 201 key:" in lines[1]
    assert lines[2].startswith("team admin: update user bob") and " 422 " in lines[2] and "team acme/search" in lines[2]
    assert lines[3].endswith("refused: costline.ModelNotAllowed (org acme openai on approval o3*)"), lines[3]
    assert lines[4].startswith("team admin: request approval o3-mini") and " 201 approval:acme/search|openai|o3*" in (
        lines[4])
    assert lines[5].startswith("org admin: approve approval o3-mini") and " 200 " in lines[5]
    assert "sent (until " in lines[6] and lines[6].endswith("the provider received 1"), lines[6]
    audit = [line.split()[2:] for line in lines if line.startswith("audit log")]
    assert audit == [["demo-search-admin", "create", "user:bob"],
                     ["demo-search-admin", "create", "key:b94b2339ad4e831d"],
                     ["demo-search-admin", "request", "approval:acme/search|openai|o3*"],
                     ["demo-org-admin", "approve", "approval:acme/search|openai|o3*"]], audit


def test_demo_prints_where_it_wrote_the_export_and_the_review(demo_output):
    """The day's Parquet partitions and the cost review page, each named with its path, and the files are there."""
    import re
    from pathlib import Path

    export = re.search(r"usage (\d+) rows -> (\S+/export/usage/date=\d{4}-\d{2}-\d{2}/part-0\.parquet), "
                       r"focus (\d+) rows -> (\S+/export/focus/date=\d{4}-\d{2}-\d{2}/part-0\.parquet)", demo_output)
    assert export and int(export[1]) > 0 and int(export[3]) > 0, demo_output[-3000:]
    review = re.search(r"review of \S+ to \S+ written to (\S+/review\.html)", demo_output)
    assert review, demo_output[-3000:]
    for path in (export[2], export[4], review[1]):
        assert Path(path).is_file(), path
