"""Every setting services/config.yaml takes from the environment is in the README's settings table
(the file's own promise), so an operator finds each one documented."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_environment_setting_of_the_config_file_is_in_the_readme_table():
    config = (ROOT / "services" / "config.yaml").read_text(encoding="utf-8")
    code = "\n".join(line for line in config.splitlines() if not line.lstrip().startswith("#"))
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):", code))
    assert {"MONGO_URI", "MONGO_TIMEOUT_MS", "ACCESS_LOG_LEVEL", "BATCH_MAX"} <= names  # (the pattern finds them)
    table = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    documented = {name for line in table for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1])}
    assert sorted(names - documented) == []
