"""compose.yaml is checked here because no Docker engine runs in the tests: a file that the
Compose Specification rejects, a service without a health check, a MESSPLUS_ variable the
workers refuse at start-up, or an image that cannot be built would otherwise only show on
the day someone deploys."""

from __future__ import annotations

import argparse
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.deploy import SETTING_VARIABLES
from workers.cli import build_parser
from workers.settings import PREFIX

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
SETTING_VARIABLE = re.compile(rf"\b{PREFIX}[A-Z0-9_]+")
# Dockerfile instructions whose first arguments are paths inside the build context.
COPY_INSTRUCTION = re.compile(r"^\s*(?:COPY|ADD)\s+(?!--from)(.+)$", re.MULTILINE | re.IGNORECASE)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


SERVICES: dict[str, dict[str, Any]] = compose()["services"]


def compose_spec_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema as check-jsonschema vendors it (offline)."""
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


def test_compose_file_follows_the_compose_specification() -> None:
    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(compose())
    ]
    assert errors == []


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_health_check(name: str) -> None:
    healthcheck = SERVICES[name].get("healthcheck", {})
    assert healthcheck.get("test"), f"service {name} has no health check"
    assert not healthcheck.get("disable", False), f"service {name} disables its health check"


def test_every_messplus_variable_is_a_known_setting() -> None:
    """Read from the whole text, comments included: workers exit on an unknown variable."""
    used = set(SETTING_VARIABLE.findall(COMPOSE.read_text()))
    assert used, "compose.yaml configures no worker"
    assert used <= SETTING_VARIABLES, f"unknown settings: {sorted(used - SETTING_VARIABLES)}"


def _build_context(build: str | dict[str, Any]) -> tuple[Path, Path]:
    """(context folder, Dockerfile) of a service's `build`, relative to compose.yaml."""
    spec = {"context": build} if isinstance(build, str) else build
    context = COMPOSE.parent / spec.get("context", ".")
    return context, context / spec.get("dockerfile", "Dockerfile")


def _copied_paths(dockerfile: Path) -> list[str]:
    """Sources of every COPY/ADD (all arguments but the destination, options dropped)."""
    sources = []
    for arguments in COPY_INSTRUCTION.findall(dockerfile.read_text()):
        words = [word for word in arguments.split() if not word.startswith("--")]
        sources.extend(words[:-1])
    return sources


@pytest.mark.parametrize("name", sorted(name for name, spec in SERVICES.items() if "build" in spec))
def test_every_build_context_and_what_its_dockerfile_copies_exist(name: str) -> None:
    context, dockerfile = _build_context(SERVICES[name]["build"])
    assert dockerfile.is_file(), f"service {name}: no {dockerfile}"
    missing = [source for source in _copied_paths(dockerfile) if not (context / source).exists()]
    assert missing == [], f"{dockerfile} copies what {context} lacks"


def test_every_image_is_built_here_or_published_with_a_pinned_tag() -> None:
    """The project's own image exists only where compose.yaml builds it; a published image
    carries a version tag, so a deployment does not change under a `latest` pull."""
    built = {spec["image"] for spec in SERVICES.values() if "build" in spec and "image" in spec}
    for name, spec in SERVICES.items():
        assert "image" in spec or "build" in spec, f"service {name} has neither image nor build"
        image = spec.get("image")
        if image is None or image in built:
            continue
        _, _, tag = image.rpartition("/")[2].partition(":")
        assert tag and tag != "latest", f"service {name}: {image} is not pinned to a version"


def _messplus_argv(spec: dict[str, Any]) -> list[str] | None:
    """The `messplus` arguments a service runs, or None if it runs something else."""
    entrypoint = spec.get("entrypoint") or []
    command = spec.get("command") or []
    argv = [*entrypoint, *command]
    if not argv or argv[0] != "messplus" or not command:
        return None
    return argv[1:]


@pytest.mark.parametrize(
    "name", sorted(name for name, spec in SERVICES.items() if _messplus_argv(spec) is not None)
)
def test_every_messplus_command_parses(name: str) -> None:
    argv = _messplus_argv(SERVICES[name])
    assert argv is not None
    parser = build_parser()
    parser.exit_on_error = False
    try:
        parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as exc:
        pytest.fail(f"service {name}: `messplus {' '.join(argv)}` does not parse: {exc}")


# Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ for a literal $.
_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


class MissingVariable(Exception):
    """What `docker compose` refuses to start with: a required variable unset or empty."""


def interpolate(text: str, environment: dict[str, str]) -> str:
    """compose.yaml as Compose reads it with `environment` (the subset of its rules it uses)."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, argument = match.groups()
        found = environment.get(name, "")
        if kind == ":?" and not found:
            raise MissingVariable(f"required variable {name} is missing a value: {argument}")
        return found or (argument if kind == ":-" else "")

    return _INTERPOLATION.sub(value, text)


def test_no_password_ships_in_the_file_and_compose_refuses_to_start_without_one() -> None:
    """Issue 12.10: the Postgres password came with compose.yaml (messplus:messplus)."""
    text = COMPOSE.read_text()
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(text, {})
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(text, {"POSTGRES_PASSWORD": ""})
    password = "0123abcdef"
    resolved: dict[str, Any] = yaml.safe_load(interpolate(text, {"POSTGRES_PASSWORD": password}))
    postgres = resolved["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == password
    for name, spec in resolved["services"].items():
        url = spec.get("environment", {}).get("MESSPLUS_DATABASE_URL")
        if url is not None:
            parts = urlsplit(url)
            assert (parts.username, parts.password) == (postgres["POSTGRES_USER"], password), name
    assert "messplus:messplus@" not in text
