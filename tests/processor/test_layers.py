"""The processor's house: folders are layers, and a layer imports only itself and the layers below it
(docs/architecture.md draws them). Checked two ways: every import statement in the source (function-level ones
included), and what importing each folder loads into a fresh interpreter. Beside them: the ledger is the one store
(no module outside `ledger/` defines a table), only `clock.py` and the composition roots (`service.py`, `cli.py`) read the system clock, and the money
and time units are spelled in one module."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "processor" / "src" / "costline" / "processor"
PACKAGE = "costline.processor"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "version", "units", "model", "clock", "overflow", "formats", "refresher"),
    ("config",),
    ("ledger",),
    ("pricing", "ownership", "policy", "governance"),
    ("reports",),
    ("metrics",),
    ("ingest",),
    ("http",),
    ("service",),
    ("cli",),
)
"""Bottom first. A module in a unit of one row may import any unit of its own row or of the rows above it."""
LAYER = {unit: level for level, units in enumerate(LAYERS) for unit in units}

TABLES_OUTSIDE_THE_LEDGER: set[str] = set()
"""Modules outside `ledger/` that define a table: none (closed periods and reconciliation moved into the ledger; what
their rows mean stays in `reports/`). Kept as a list so that the rule reads like the clock's below."""
CLOCK_READERS: set[str] = set()
"""Modules outside the clock's readers below that still read the system clock themselves: none (every other module
is handed the service's clock, or a `now`). Kept as a list so that the rule reads like the tables' above."""
CLOCK_OWNERS = ("clock.py", "service.py", "cli.py")
"""`clock.py` defines the system clock; the two composition roots read it: `service.py` for `costline serve` and
`cli.py` for the commands that open a ledger (a default `--to`, the current month, when a month was closed)."""


def _unit(module: str) -> str | None:
    """The layer unit of a `costline.processor...` module name, None for anything else."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    rest = module[len(PACKAGE) + 1:]
    return rest.split(".", 1)[0] if rest else "__init__"


def _unit_of_path(path: Path, source: Path = SOURCE) -> str:
    return path.relative_to(source).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            if node.module == PACKAGE:  # `from costline.processor import service`
                found += [f"{PACKAGE}.{alias.name}" for alias in node.names]
    return found


def upward_imports(source: Path = SOURCE) -> list[str]:
    bad = []
    for path in sorted(source.rglob("*.py")):
        unit = _unit_of_path(path, source)
        for module in _imports(path):
            target = _unit(module)
            if target is not None and target not in LAYER:
                bad.append(f"{path.relative_to(source)} imports {module}: {target} is in no layer")
            elif target is not None and LAYER[target] > LAYER[unit]:
                bad.append(f"{path.relative_to(source)} ({unit}) imports {module} ({target}, a layer above)")
    return bad


def test_every_unit_of_the_source_is_in_a_layer():
    units = {_unit_of_path(path) for path in SOURCE.rglob("*.py")}
    assert units == set(LAYER)


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_check_finds_a_planted_upward_import(tmp_path):
    planted = tmp_path / "processor"
    for path in SOURCE.rglob("*.py"):
        target = planted / path.relative_to(SOURCE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text("utf-8"), "utf-8")
    writer = planted / "ledger" / "writer.py"
    writer.write_text(writer.read_text("utf-8") + "\n\ndef _planted():\n"
                      "    from costline.processor.pricing import Pricer  # noqa: F401\n", "utf-8")
    assert upward_imports(planted) == [
        "ledger/writer.py (ledger) imports costline.processor.pricing (pricing, a layer above)"]


@pytest.mark.parametrize("unit", [unit for units in LAYERS for unit in units if unit not in ("__init__",)])
def test_importing_a_unit_loads_nothing_above_it(unit):
    """In a fresh interpreter: what a unit and every module in it load, transitively."""
    path = SOURCE / unit
    modules = ([f"{PACKAGE}.{'.'.join(p.relative_to(SOURCE).with_suffix('').parts).removesuffix('.__init__')}"
                for p in sorted(path.rglob("*.py"))] if path.is_dir() else [f"{PACKAGE}.{unit}"])
    probe = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
             f"print(' '.join(sorted(m for m in sys.modules if m.startswith('{PACKAGE}'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    above = [m for m in loaded if (u := _unit(m)) is not None and LAYER.get(u, 99) > LAYER[unit]]
    assert above == []


def _defines_a_table(path: Path) -> bool:
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Table"
               for node in ast.walk(ast.parse(path.read_text("utf-8"))))


def test_only_the_ledger_defines_tables():
    outside = {str(p.relative_to(SOURCE)) for p in SOURCE.rglob("*.py")
               if _defines_a_table(p) and p.relative_to(SOURCE).parts[0] != "ledger"}
    assert outside == TABLES_OUTSIDE_THE_LEDGER


SYSTEM_CLOCK = re.compile(r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.time(_ns)?\(|\bsystem_clock\b")


def test_only_the_clock_and_the_service_read_the_system_clock():
    readers = {str(p.relative_to(SOURCE)) for p in SOURCE.rglob("*.py")
               if SYSTEM_CLOCK.search(p.read_text("utf-8")) and str(p.relative_to(SOURCE)) not in CLOCK_OWNERS}
    assert readers == CLOCK_READERS


def test_the_ledger_loads_no_pricing_ownership_or_normalisation():
    probe = (
        "import sys, costline.processor.ledger\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('costline.processor.') or m == 'genai_prices')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert "costline.processor.ledger" in loaded
    forbidden = ("costline.processor.pricing", "costline.processor.ownership", "costline.processor.ingest.normalize",
                 "costline.processor.config.core", "costline.processor.ingest.pipeline", "genai_prices")
    assert [m for m in loaded if m.startswith(forbidden)] == []


MONEY_AND_TIME_LITERALS = re.compile(r"1e12|1e-12|10 ?\*\* ?12|1_000_000_000_000|3_600_000_000_000|3600 ?\* ?10 ?\*\* ?9")
BOUNDS_THAT_ARE_NOT_UNITS = ("MAX_TOKENS = ", "MAX_USD = ")
"""A trillion tokens per call, a trillion dollars per budget or chargeback amount (`config.validators.MAX_USD`):
limits that happen to be 10^12, not the money unit."""


def test_money_and_time_units_are_spelled_once():
    found = [f"{path.relative_to(SOURCE)}:{n}: {line.strip()}"
             for path in sorted(SOURCE.rglob("*.py")) if path.name != "units.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if MONEY_AND_TIME_LITERALS.search(line) and not any(name in line for name in BOUNDS_THAT_ARE_NOT_UNITS)]
    assert found == []
