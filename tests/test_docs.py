"""The README's catalogue and settings tables are generated from the registry and the settings
models (mprl/docs.py), so they list exactly what the validator accepts."""

from __future__ import annotations

from pathlib import Path

from mprl import docs
from mprl.catalogue import CATALOGUE

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tables_match_the_registry_and_the_validator():
    text = README.read_text()
    names = docs.block_names(text)
    assert "catalogue" in names
    assert sorted(n.split(":", 1)[1] for n in names if n.startswith("settings:")) == sorted(CATALOGUE), "one settings table per algorithm"
    assert docs.render(text) == text, "README tables are stale: run `python -m mprl.docs README.md`"


def test_every_documented_setting_is_accepted_by_the_validator():
    for name, entry in CATALOGUE.items():
        table = docs.settings_table(name)
        documented = [line.split("`")[1] for line in table.splitlines()[2:]]
        assert documented == [f for f in entry.settings.model_fields if f not in entry.settings.unused_settings], name
        assert not [k for k, m, _ in entry.settings.problems(entry.override_fields()) if k in documented], name
