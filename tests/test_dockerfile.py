"""The container image and the Docker / Kubernetes work pools, checked by reading the files
(Docker is not available where the tests run): the Dockerfile installs the project as ``make``
does for production, runs as a user of its own with HOME as a volume, and prefect.yaml's
alternative pools pass the job variables their workers accept and the paths the image has."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# make installs these for development only; an image runs flows, it never tests, lints or plots.
DEVELOPMENT_EXTRAS = {"test", "lint", "notebooks"}


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def installed_extras(command: str) -> tuple[str, set[str]] | None:
    """(what is installed, its extras) of a ``pip install [-e] '.[a,b]'`` command, else None."""
    if not re.search(r"\bpip install\b", command):
        return None
    words = shlex.split(command)
    targets = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    [target] = targets
    match = re.fullmatch(r"([^\[]+)(?:\[([^\]]*)\])?", target)
    assert match, target
    return match[1], {e.strip() for e in (match[2] or "").split(",") if e.strip()}


def make_install() -> tuple[str, set[str]]:
    found = [
        extras
        for line in (REPO / "Makefile").read_text().splitlines()
        if (extras := installed_extras(line.replace("$(BIN)/python -m ", "").strip())) and extras[0] == "."
    ]
    assert len(found) == 1, found
    return found[0]


def env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    values = {}
    for keyword, arguments in instructions:
        if keyword == "ENV":
            values.update(word.split("=", 1) for word in shlex.split(arguments))
    return values


def test_the_image_installs_the_project_with_makes_production_extras() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    target, make_extras = make_install()
    # make installs every extra the project declares; the image all of them but development's.
    assert make_extras == set(pyproject["project"]["optional-dependencies"])
    [docker] = [extras for k, a in dockerfile() if k == "RUN" and (extras := installed_extras(a))]
    assert docker == (".", make_extras - DEVELOPMENT_EXTRAS)
    assert docker[1] == {"postgres", "dask"}


def test_slim_python_non_root_home_as_a_volume_checkout_where_prefect_yaml_looks() -> None:
    instructions = dockerfile()
    [base] = [a for k, a in instructions if k == "FROM"]
    assert base == "python:3.11-slim"  # pyproject: requires-python >= 3.11
    users = [a for k, a in instructions if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    values = env(instructions)
    assert [a for k, a in instructions if k == "VOLUME"] == [values["M3SYNC_HOME"]]
    [workdir] = [a for k, a in instructions if k == "WORKDIR"]
    assert values["M3SYNC_CHECKOUT"] == workdir  # the source prefect.yaml's pull step runs flows from


def test_dockerignore_keeps_what_pip_install_needs_and_leaves_out_the_environment() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    needed = ["pyproject.toml", pyproject["project"]["readme"], "prefect.yaml", *packages]
    for path in needed:
        assert not any(fnmatch.fnmatch(path, p) for p in patterns), path
    assert {".git", ".venv", ".m3sync"} <= set(patterns)


def worker_variables(pool_type: str) -> dict[str, Any]:
    """The job variables' JSON schema of a worker type, from the worker metadata Prefect's server
    ships (prefect-docker and prefect-kubernetes need not be installed to read it)."""
    import prefect.server.api

    metadata = json.loads(
        (Path(prefect.server.api.__file__).parent / "collections_data/views/aggregate-worker-metadata.json").read_text()
    )
    for collection in metadata.values():
        for worker in collection.values():
            if worker.get("type") == pool_type:
                return dict(worker["default_base_job_configuration"]["variables"])
    raise AssertionError(f"no {pool_type} worker in Prefect's metadata")


@pytest.mark.parametrize("pool_type", ["docker", "kubernetes"])
def test_prefect_yaml_alternative_pools_pass_variables_their_workers_accept(pool_type: str) -> None:
    pools = yaml.safe_load((REPO / "prefect.yaml").read_text())["definitions"]["work_pools"]
    variables = pools[pool_type]["job_variables"]
    schema = worker_variables(pool_type)
    assert set(variables) <= set(schema["properties"])
    jsonschema.validate(variables, schema)
    # The image's paths (Dockerfile) and HOME on the volume.
    values = env(dockerfile())
    assert variables["env"] == {"M3SYNC_HOME": values["M3SYNC_HOME"], "M3SYNC_CHECKOUT": values["M3SYNC_CHECKOUT"]}
    if pool_type == "docker":
        assert variables["volumes"] == [f"m3sync-home:{values['M3SYNC_HOME']}"]


def test_the_deployment_uses_the_process_pool_by_default() -> None:
    document = yaml.safe_load((REPO / "prefect.yaml").read_text())
    process = document["definitions"]["work_pools"]["process"]
    assert [d["work_pool"] for d in document["deployments"]] == [process] * len(document["deployments"])
