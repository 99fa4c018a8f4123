"""The container setup (docker/) against the README and the configuration it feeds.

Nothing here runs Docker: the files are read. docker/compose.yaml must set, on every instance,
exactly the variables of the README's table (section "Several instances on one PostgreSQL"),
each of them a key the launcher and the plugin accept; the instances must share the storage and
keep their own data; the proxy must reach every instance; the image must install and start the
way the README does.

"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from hounsfield.config import SECTION, PluginSection, load_settings
from hounsfield.envconfig import apply_env_overrides
from hounsfield.launcher import POSTGRESQL_INDEX, effective_config

REPOSITORY = Path(__file__).resolve().parents[2]
DOCKER = REPOSITORY / "docker"
COMPOSE = DOCKER / "compose.yaml"
README = REPOSITORY / "README.md"
ORTHANC_JSON = REPOSITORY / "orthanc.json"
README_SECTION = "## Several instances on one PostgreSQL"

# Not in the README's table, but what its "Remote access" asks of an instance behind an HTTPS
# proxy, as every instance here is: accept clients that are not local (the proxy is another
# container), never send cookies in clear, and read the client's address from the proxy's
# X-Forwarded-For. With the values they must have.
BEHIND_THE_PROXY = {
    "ORTHANC__REMOTE_ACCESS_ALLOWED": "true",
    "ORTHANC__HOUNSFIELD__AUTH__SECURE_COOKIES": "true",
    "ORTHANC__HOUNSFIELD__TRUSTED_PROXIES": '["172.28.0.10"]',
}
INSTANCE = re.compile(r"orthanc-\d+")
HTTP_PORT = 8042  # orthanc.json's HttpPort, which the instances keep inside their containers


# --- Compose's variable interpolation ---------------------------------------------------------


class MissingVariable(LookupError):
    """A ``${NAME:?message}``: compose refuses to start without NAME."""


_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """``value`` with ``${...}`` replaced as compose does, in every text inside it."""
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        escaped, name, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        present = name in environ and (environ[name] != "" or operator in ("-", "?"))
        if present:
            return environ[name]
        if operator and operator.endswith("?"):
            raise MissingVariable(f"{name}: {argument}")
        return argument if operator else ""

    return _VARIABLE.sub(replace, value)


# --- What the tests read ----------------------------------------------------------------------


def readme_table() -> dict[str, str]:
    """The README table's variables (first column), each with its example (second column)."""
    text = README.read_text()
    start = text.index(README_SECTION)
    end = text.find("\n## ", start + len(README_SECTION))
    rows = re.findall(r"^\|\s*`(\w+)`\s*\|\s*([^|]*?)\s*\|", text[start:end], re.MULTILINE)
    assert rows, f"no `VARIABLE` rows in the README's table under {README_SECTION!r}"
    return dict(rows)


def secrets() -> set[str]:
    """The README's variables whose example is '(secret)'."""
    return {name for name, example in readme_table().items() if example == "(secret)"}


def compose_file() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def dummy_environment(compose: Any) -> dict[str, str]:
    """A value for every variable compose interpolates: text JSON reads as text, as a real
    password would have to be (README, Configuration: values are read as JSON when they parse)."""
    names = set(re.findall(r"\$\{(\w+)", json.dumps(compose)))
    return {name: f"dummy-{name.lower().replace('_', '-')}" for name in names}


def instances(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running the server, interpolated with dummy values."""
    environ = dummy_environment(compose)
    services = interpolate(compose["services"], environ)
    built_here = {
        name
        for name, service in services.items()
        if isinstance(service.get("build"), dict)
        and service["build"].get("dockerfile") == "docker/Dockerfile"
    }
    found = {name: service for name, service in services.items() if INSTANCE.fullmatch(name)}
    assert built_here == set(found), "the services built from docker/Dockerfile are orthanc-N"
    assert len(found) >= 2, "several instances: that is the point of this setup"
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping (NAME: value), not a list"
    return env


def mount(service: dict[str, Any], path: str) -> tuple[str, PurePosixPath]:
    """The volume (or host folder) holding ``path`` in the service's container, and the folder
    inside it: the mount with the longest target above ``path``."""
    wanted = PurePosixPath(path)
    found = None
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), "volumes in the short syntax, source:target[:mode]"
        source, target = entry.split(":")[:2]
        target_path = PurePosixPath(target)
        if (wanted == target_path or target_path in wanted.parents) and (
            found is None or len(target_path.parts) > len(found[1].parts)
        ):
            found = (source, target_path)
    assert found is not None, f"{path} is not on a volume: it would go with the container"
    return found[0], wanted.relative_to(found[1])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of docker/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", (DOCKER / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def known_key(path: list[str], config: Mapping[str, Any]) -> bool:
    """Whether orthanc.json has ``path``, or, in our section, the plugin's settings do."""
    node: Any = config
    for key in path:
        if not (isinstance(node, Mapping) and key in node):
            return path[0] == SECTION and _model_has(PluginSection, path[1:])
        node = node[key]
    return True


def _model_has(model: type[BaseModel], path: list[str]) -> bool:
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    if not path or path[0] not in fields:
        return False
    annotation = fields[path[0]].annotation
    if len(path) == 1:
        return True
    nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return nested and _model_has(annotation, path[1:])


# --- The tests --------------------------------------------------------------------------------


def test_every_instance_sets_exactly_the_readme_variables() -> None:
    wanted = set(readme_table()) | set(BEHIND_THE_PROXY)
    for name, service in instances(compose_file()).items():
        env = environment(service)
        assert set(env) == wanted, (
            f"{name}: missing {sorted(wanted - set(env))}, not in the README's table "
            f"{sorted(set(env) - wanted)}"
        )
        for variable, value in env.items():
            assert isinstance(value, str), f"{name}: {variable} must be quoted text in compose"
        for variable, value in BEHIND_THE_PROXY.items():
            assert env[variable] == value, f"{name}: {variable}"


def test_compose_refuses_to_start_without_the_secrets() -> None:
    compose = compose_file()
    assert secrets(), "the README's table marks its passwords '(secret)'"
    environ = dummy_environment(compose)
    for name, service in compose["services"].items():
        if not INSTANCE.fullmatch(name):
            continue
        for secret in secrets():
            written = environment(service)[secret]
            assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", written), (
                f"{name}: {secret} is {written!r}, not from a required variable ${{NAME:?why}}"
            )
            variable = written[2:].partition(":")[0]
            unset = {key: value for key, value in environ.items() if key != variable}
            for without in (unset, {**unset, variable: ""}):  # unset, or set to nothing
                with pytest.raises(MissingVariable):
                    interpolate(written, without)


def test_instances_reach_the_database_compose_makes() -> None:
    compose = compose_file()
    services = interpolate(compose["services"], dummy_environment(compose))
    for name, service in instances(compose).items():
        env = environment(service)
        database = services[env["ORTHANC__POSTGRESQL__HOST"]]
        assert database["image"].startswith("postgres:15"), "PostgreSQL 15, as the tests use"
        assert env["ORTHANC__POSTGRESQL__PORT"] == "5432"
        made = environment(database)
        assert env["ORTHANC__POSTGRESQL__DATABASE"] == made["POSTGRES_DB"], name
        assert env["ORTHANC__POSTGRESQL__USERNAME"] == made["POSTGRES_USER"], name
        assert env["ORTHANC__POSTGRESQL__PASSWORD"] == made["POSTGRES_PASSWORD"], name


def test_every_variable_is_a_key_the_launcher_and_the_plugin_accept() -> None:
    defaults = json.loads(ORTHANC_JSON.read_text())
    for name, service in instances(compose_file()).items():
        env = environment(service)
        applied = apply_env_overrides(copy.deepcopy(defaults), env)
        unknown = [key for key in applied if not known_key(key.split("."), defaults)]
        assert not unknown, f"{name}: keys neither orthanc.json nor the plugin has: {unknown}"

        # What the launcher does at the container's start, then the plugin's validation.
        config = effective_config(ORTHANC_JSON, env)
        settings = load_settings(config, env)
        assert settings.node_name == env["ORTHANC__HOUNSFIELD__NODE_NAME"]
        assert settings.remote_access_allowed and settings.plugin.auth.secure_cookies
        assert settings.initial_admin_password == env["HOUNSFIELD_ADMIN_PASSWORD"]
        assert settings.database.backend == "postgresql"
        # README: the user is never named as our schema (PostgreSQL's search_path starts
        # with the schema named as the user).
        assert settings.database.schema != env["ORTHANC__POSTGRESQL__USERNAME"]
        assert f"host={env['ORTHANC__POSTGRESQL__HOST']}" in settings.database.conninfo
        assert POSTGRESQL_INDEX in config["Plugins"], "the launcher loads the index plugin"
        assert config["PostgreSQL"]["Password"] == env["ORTHANC__POSTGRESQL__PASSWORD"]


def test_instances_share_the_storage_and_keep_their_own_data_and_name() -> None:
    compose = compose_file()
    declared = set(compose.get("volumes") or {})
    storage: set[tuple[str, PurePosixPath]] = set()
    data: dict[str, tuple[str, PurePosixPath]] = {}
    names: dict[str, str] = {}
    for name, service in instances(compose).items():
        env = environment(service)
        storage.add(mount(service, env["ORTHANC__STORAGE_DIRECTORY"]))
        data[name] = mount(service, env["ORTHANC__HOUNSFIELD__DATA_DIRECTORY"])
        names[name] = env["ORTHANC__HOUNSFIELD__NODE_NAME"]
        for source, _ in (data[name], *storage):
            assert source.startswith(("/", ".")) or source in declared, f"volume {source}"
    assert len(storage) == 1, f"one storage for every instance, not {sorted(storage)}"
    assert len(set(data.values())) == len(data), f"a DataDirectory each: {data}"
    assert storage.isdisjoint(data.values()), "the DataDirectory is not the shared storage"
    assert len(set(names.values())) == len(names), f"a NodeName each: {names}"


def test_instances_start_one_after_the_other_and_come_back_after_a_crash() -> None:
    compose = compose_file()
    found = instances(compose)
    first = min(found, key=lambda name: int(name.split("-")[1]))
    for name, service in found.items():
        # README, "If Orthanc dies": a container setup uses systemd's policy.
        assert service.get("restart") == "on-failure", name
        assert service.get("healthcheck", {}).get("test"), f"{name}: a health check"
        depends = service.get("depends_on", {})
        assert depends.get("postgres", {}).get("condition") == "service_healthy", name
        if name != first:  # Orthanc 1.10's index plugin makes its tables without a lock
            assert depends.get(first, {}).get("condition") == "service_healthy", name
    published = [
        str(port).rsplit(":", 1)[0]
        for service in interpolate(compose["services"], dummy_environment(compose)).values()
        for port in service.get("ports", [])
    ]
    assert len(published) == len(set(published)), f"a host port twice: {published}"


def test_the_proxy_balances_over_every_instance_and_forwards_the_public_address() -> None:
    caddyfile = (DOCKER / "Caddyfile").read_text()
    lines = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    proxies = [line.split()[1:] for line in lines if line.startswith("reverse_proxy ")]
    assert len(proxies) == 1, "one reverse_proxy"
    upstreams = {token for token in proxies[0] if token != "{"}
    assert upstreams == {f"{name}:{HTTP_PORT}" for name in instances(compose_file())}
    # Our plugin and Orthanc's DICOMweb plugin write their URLs from RFC 7239's Forwarded
    # header (host, proto); the DICOMweb plugin would keep quotes around a value.
    forwarded = re.findall(r'^header_up\s+Forwarded\s+"([^"]*)"$', "\n".join(lines), re.MULTILINE)
    assert len(forwarded) == 1, 'header_up Forwarded "host=...;proto=...", set once'
    pairs = dict(pair.partition("=")[::2] for pair in forwarded[0].split(";"))
    assert pairs == {"host": "{hostport}", "proto": "{scheme}"}
    limits = [line for line in lines if re.search(r"request_body|max_size|read_body", line)]
    assert not limits, f"no body limit or body timeout at the proxy (uploads are GBs): {limits}"
    # The instances trust exactly the proxy's address for X-Forwarded-For (the audit's client).
    compose = compose_file()
    proxy_address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    trusted = json.loads(BEHIND_THE_PROXY["ORTHANC__HOUNSFIELD__TRUSTED_PROXIES"])
    assert trusted == [proxy_address]


def test_the_image_installs_like_the_readme_and_starts_the_launcher() -> None:
    instructions = dockerfile_instructions()
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any(re.match(r"make install\b", run) for run in runs), "RUN make install"
    commands = [json.loads(arguments) for keyword, arguments in instructions if keyword == "CMD"]
    assert commands[-1][-3:] == ["-m", "hounsfield.launcher", "orthanc.json"]
    assert commands[-1][0].endswith(".venv/bin/python")
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server does not run as root"

    # The paths compose mounts volumes at are folders of the image owned by the server's user
    # (docker/Dockerfile), which Docker copies, ownership included, into a new named volume.
    volumes = {
        path
        for keyword, arguments in instructions
        if keyword == "VOLUME"
        for path in json.loads(arguments)
    }
    for name, service in instances(compose_file()).items():
        env = environment(service)
        for variable in ("ORTHANC__STORAGE_DIRECTORY", "ORTHANC__HOUNSFIELD__DATA_DIRECTORY"):
            assert env[variable] in volumes, f"{name}: {variable} is not a VOLUME of the image"


def test_the_build_context_holds_what_the_image_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "everything left out first: data/ never enters the build"
    allowed = [PurePosixPath(pattern[1:]) for pattern in patterns if pattern.startswith("!")]
    for keyword, arguments in dockerfile_instructions():
        if keyword != "COPY" or "--from" in arguments:
            continue
        for source in [token for token in arguments.split() if not token.startswith("--")][:-1]:
            path = PurePosixPath(source)
            assert (REPOSITORY / path).exists(), f"COPY {source}: no such path"
            assert any(path == item or item in path.parents for item in allowed), (
                f"COPY {source}: left out of the build context by Dockerfile.dockerignore"
            )
