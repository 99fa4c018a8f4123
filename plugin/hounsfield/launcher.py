"""``make run``: start Orthanc with orthanc.json, the environment's overrides and our plugin.

Reads the default configuration, applies ``ORTHANC__...`` variables, makes relative
paths absolute (relative to the configuration file), writes the effective
configuration into the plugin's data folder (owner-only) and replaces this process
with Orthanc, so signals (Ctrl-C, SIGTERM) reach Orthanc directly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from hounsfield.config import SECTION, ConfigError, load_settings
from hounsfield.envconfig import EnvConfigError, apply_env_overrides

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPOSITORY / "orthanc.json"
DEFAULT_ORTHANC = "/usr/sbin/Orthanc"

PATH_KEYS = ("StorageDirectory", "IndexDirectory", "PythonScript")
# Orthanc's index in PostgreSQL (Debian's orthanc-postgresql), loaded when enabled.
POSTGRESQL_INDEX = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
PATH_LIST_KEYS = ("Plugins", "LuaScripts")


def effective_config(path: Path, environ: dict[str, str]) -> dict[str, Any]:
    config = json.loads(path.read_text())
    apply_env_overrides(config, environ)
    base = path.resolve().parent

    def absolute(value: str) -> str:
        return str((base / value).resolve())

    for key in PATH_KEYS:
        if isinstance(config.get(key), str):
            config[key] = absolute(config[key])
    for key in PATH_LIST_KEYS:
        if isinstance(config.get(key), list):
            config[key] = [absolute(item) for item in config[key]]
    section = config.get(SECTION)
    if isinstance(section, dict) and isinstance(section.get("DataDirectory"), str):
        section["DataDirectory"] = absolute(section["DataDirectory"])
    if config.get("PostgreSQL", {}).get("EnableIndex") is True:
        plugins = config.setdefault("Plugins", [])
        if not any(Path(plugin).name.startswith("libOrthancPostgreSQLIndex") for plugin in plugins):
            plugins.append(POSTGRESQL_INDEX)
    return config


def write_effective_config(config: dict[str, Any]) -> Path:
    settings = load_settings(config)
    settings.data_directory.mkdir(parents=True, exist_ok=True)
    target = settings.data_directory / "orthanc.effective.json"
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        json.dump(config, stream, indent=2)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--print", action="store_true", help="print the effective configuration")
    parser.add_argument("--orthanc", default=os.environ.get("ORTHANC_BINARY", DEFAULT_ORTHANC))
    args = parser.parse_args(argv)
    try:
        config = effective_config(args.config, dict(os.environ))
        if args.print:
            json.dump(config, sys.stdout, indent=2)
            print()
            return
        target = write_effective_config(config)
    except (OSError, ValueError, EnvConfigError, ConfigError) as error:
        sys.exit(f"hounsfield: cannot prepare the configuration: {error}")
    # DCMTK (Orthanc's DICOM layer) reads TCP_NODELAY: without it, Nagle's algorithm and
    # delayed ACKs stall every C-STORE by ~40 ms (11 instead of ~180 instances/s here).
    os.environ.setdefault("TCP_NODELAY", "1")
    os.execv(args.orthanc, [args.orthanc, str(target)])


if __name__ == "__main__":
    main()
