"""constraints.txt: the Python package versions the suite is tested with (scripts/bootstrap.sh installs
pyproject.toml's dependencies with `pip install -c constraints.txt`; `make constraints` writes it)."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def pins() -> dict[str, Version]:
    found = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt line {number} is not <name>==<version>: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in found, f"constraints.txt pins {name} twice"
        found[name] = Version(match.group(2))
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["dev"]]


def test_every_declared_dependency_is_pinned_within_its_range():
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} (pyproject.toml) has no version in constraints.txt: make constraints"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {requirement.name} {pinned[name]}, outside pyproject.toml's {requirement.specifier}")


def test_the_known_limits_hold():
    pinned = pins()
    assert pinned["nameko"] == Version("3.0.0rc11")
    assert Version("4.7") <= pinned["pymongo"] < Version("4.16")  # 4.16 dropped eventlet support


def test_the_environment_runs_the_pinned_versions():
    """The tests run on what constraints.txt says: a package upgraded in .venv without `make constraints`
    (or a bootstrap that installed without the file) shows here."""
    differ = []
    for name, version in pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:  # not needed on this Python (constraints only constrain)
            continue
        if installed != version:
            differ.append(f"{name} {installed} installed, {version} in constraints.txt")
    assert not differ, "; ".join(differ) + " (make constraints after an intended upgrade)"
