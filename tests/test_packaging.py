"""Installs are reproducible and complete: the constraints file pins what the suite ran with,
and a non-editable install (a wheel) carries the web page's static files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_the_web_page_and_serves_it_from_site_packages(tmp_path):
    src = tmp_path / "src"  # a copy: building in the shared checkout would leave build/ behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in ("mprl", "algorithms"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("mprl-*.whl")
    static = sorted(p.name for p in (REPO / "mprl" / "serve" / "static").iterdir() if p.is_file())
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert static and {f"mprl/serve/static/{name}" for name in static} <= names, sorted(n for n in names if "static" in n)
    # Installed (not editable), the app finds its page next to its code.
    site = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import mprl.serve.app as a; "
             "assert a.__file__.startswith(sys.argv[1]), a.__file__; "
             "assert all((a.STATIC / n).is_file() for n in a.STATIC_FILES), a.STATIC; print('ok')")
    out = subprocess.run([sys.executable, "-c", probe, str(site)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr


def test_constraints_pin_the_suite_versions_and_are_used_by_ci_and_readme():
    lines = [ln for ln in (REPO / "constraints.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    pins = dict(ln.split("==", 1) for ln in lines)
    assert all("==" in ln for ln in lines) and "mprl" not in pins
    assert pins["torch"] == "2.13.0" and pins["ray"] == "2.60.0"
    for name in ("numpy", "mujoco", "pandas", "gymnasium", "minari", "moto"):
        assert name in pins, name
    assert 'pip install -q -c constraints.txt -e ".[test]"' in (REPO / ".ci" / "run").read_text()
    assert '-c constraints.txt -e ".[test]"' in (REPO / "README.md").read_text()
