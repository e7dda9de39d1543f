"""The Dockerfile cannot be built here (no Docker engine). Lint it with hadolint, check that every path it COPYs
from the build context exists, and read it the way a build would: stage by stage (FROM ... AS, COPY --from, WORKDIR,
ENV PATH, `python -m venv`, `pip install`), giving each target the set of project files and pip-installed
distributions its image holds. Then follow each target's Python entry points (ENTRYPOINT/CMD, HEALTHCHECK) through
their imports with `ast` (imports inside functions included): every project module reached must be in the image,
every other import in the standard library or among what the interpreter that runs it has installed. Nothing here
hard-codes a file list: renaming a module or a COPY line moves the check with it."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
TARGETS = ("poller", "job")  # `docker build --target ...`; the CDK app builds "poller" (infra/stacks/ingestion.py)
PROJECT_PACKAGES = ("job", "connectors", "udfs", "sql")  # the project's own top-level packages
# Targets that copy file by file: each .py they copy must be reached from their entry points (nothing extra).
EXACT_TARGETS = ("poller",)
# The official python images: the interpreter and `pip` live under /usr/local.
SYSTEM_PREFIX = PurePosixPath("/usr/local")
DEFAULT_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---- reading the Dockerfile ----------------------------------------------------------------------------------

def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: continuation lines joined, comment lines dropped (also inside one)."""
    result, pending = [], ""
    for line in text.splitlines():
        if line.strip().startswith("#") or (pending and not line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical, pending = (pending + line).strip(), ""
        if logical:
            keyword, _, arguments = logical.partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def split_flags(arguments: str) -> tuple[dict[str, str], list[str]]:
    """`--from=build a b` -> ({"from": "build"}, ["a", "b"]); exec form (JSON) too."""
    flags = {}
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", arguments):
        flags[match.group(1)] = match.group(2) or ""
        arguments = arguments[match.end():]
    return flags, json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def exec_form(arguments: str) -> list[str]:
    assert arguments.startswith("["), f"use the exec form (JSON) for {arguments!r}: no shell in between"
    return json.loads(arguments)


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a RUN's shell script, split at ; && || | (quotes respected)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in (";", "&&", "||", "|", "&", "(", ")"):
            commands.append(current)
            current = []
        elif not current and token in ("do", "then", "else", "done", "fi"):
            continue
        else:
            current.append(token)
    commands.append(current)
    return [command for command in commands if command]


@dataclass(frozen=True)
class Install:
    prefix: PurePosixPath  # where pip installed: a venv, or the system interpreter's /usr/local
    requirement: str  # as written: `boto3==1.44.8`


@dataclass
class Stage:
    name: str | None
    base: str  # the first FROM's image, followed through FROM <stage>
    workdir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/"))
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    files: dict[PurePosixPath, str] = field(default_factory=dict)  # image path -> repository path
    venvs: set[PurePosixPath] = field(default_factory=set)
    installs: list[Install] = field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    healthcheck: list[str] | None = None

    def copy(self, name: str) -> Stage:
        return replace(self, name=name, env=dict(self.env), files=dict(self.files), venvs=set(self.venvs),
                       installs=list(self.installs))

    def expand(self, value: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda match: self.env.get(match.group(1), ""), value)

    def path(self, value: str) -> PurePosixPath:
        return self.workdir / self.expand(value)  # an absolute value replaces the working directory

    def prefix_of(self, executable: str) -> PurePosixPath:
        """The installation `python`/`pip` runs in: a path's own, else the first on PATH that has one."""
        if "/" in executable:
            return PurePosixPath(executable).parent.parent
        for directory in self.expand(self.env["PATH"]).split(":"):
            prefix = PurePosixPath(directory).parent
            if directory.endswith("/bin") and (prefix in self.venvs or prefix == SYSTEM_PREFIX):
                return prefix
        raise AssertionError(f"no Python on PATH {self.env['PATH']!r}")

    def requirements(self, prefix: PurePosixPath) -> list[str]:
        return [install.requirement for install in self.installs if install.prefix == prefix]

    def entry_commands(self) -> list[list[str]]:
        main = (self.entrypoint or []) + (self.cmd or [])
        return [command for command in (main, self.healthcheck) if command]


def copy_sources(stage: Stage, sources: list[str], destination: str) -> dict[PurePosixPath, str]:
    """What `COPY sources destination` adds from the build context: image path -> repository path."""
    target = stage.path(destination)
    into_directory = destination.endswith("/") or len(sources) > 1
    copied = {}
    for source in sources:
        matches = sorted(REPO_ROOT.glob(source)) if any(c in source for c in "*?[") else [REPO_ROOT / source]
        for path in matches:
            assert path.exists(), f"the Dockerfile copies {source}, which is not in the repository"
            if path.is_dir():  # a directory's contents go into the destination
                for file in sorted(path.rglob("*")):
                    if file.is_file() and "__pycache__" not in file.parts:
                        copied[target / file.relative_to(path).as_posix()] = file.relative_to(REPO_ROOT).as_posix()
            else:
                copied[target / path.name if into_directory else target] = path.relative_to(REPO_ROOT).as_posix()
    return copied


def copy_from_stage(stage: Stage, origin: Stage, sources: list[str], destination: str) -> None:
    target = stage.path(destination)
    into_directory = destination.endswith("/") or len(sources) > 1
    for source in sources:
        source_path = PurePosixPath("/") / source
        for path, repository_path in origin.files.items():
            if path == source_path:
                stage.files[target / path.name if into_directory else target] = repository_path
            elif source_path in path.parents:
                stage.files[target / path.relative_to(source_path)] = repository_path
        for venv in origin.venvs:
            if venv == source_path or source_path in venv.parents:
                stage.venvs.add(target / venv.relative_to(source_path))
        for install in origin.installs:
            if install.prefix == source_path or source_path in install.prefix.parents:
                stage.installs.append(Install(target / install.prefix.relative_to(source_path), install.requirement))
        # Anything else (a downloaded jar, say) is not for this check to follow.


PIP_OPTIONS_WITH_VALUE = {"-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
                          "-t", "--target", "--prefix", "--root", "--platform", "--python-version"}


def run(stage: Stage, script: str) -> None:
    """Follow what a RUN does that matters here: venvs created, requirements pip-installed (and where)."""
    for command in shell_commands(script):
        program = PurePosixPath(command[0]).name
        if program.startswith("python") and command[1:3] == ["-m", "venv"]:
            stage.venvs.add(stage.path(command[-1]))
        elif program.startswith("python") and command[1:4] == ["-m", "pip", "install"]:
            pip_install(stage, stage.prefix_of(command[0]), command[4:])
        elif program.startswith("pip") and command[1:2] == ["install"]:
            pip_install(stage, stage.prefix_of(command[0]), command[2:])


def pip_install(stage: Stage, prefix: PurePosixPath, arguments: list[str]) -> None:
    words = iter(arguments)
    for word in words:
        if word in ("-r", "--requirement"):
            requirements_file = stage.path(next(words))
            assert requirements_file in stage.files, f"pip install -r {requirements_file}: not copied before"
            for line in (REPO_ROOT / stage.files[requirements_file]).read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    stage.installs.append(Install(prefix, line))
        elif word in PIP_OPTIONS_WITH_VALUE:
            next(words)
        elif not word.startswith("-"):
            stage.installs.append(Install(prefix, word))


def parse(text: str) -> dict[str, Stage]:
    """Every stage by name, as the build leaves it."""
    stages: dict[str, Stage] = {}
    arguments_before_from: dict[str, str] = {}
    stage: Stage | None = None
    for keyword, arguments in instructions(text):
        if keyword == "FROM":
            words = arguments.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda match: arguments_before_from.get(match.group(1), ""),
                           next(word for word in words if not word.startswith("--")))
            name = words[-1].lower() if len(words) >= 3 and words[-2].upper() == "AS" else None
            stage = stages[image.lower()].copy(name) if image.lower() in stages else Stage(name, image)
            if name:
                stages[name] = stage
            continue
        if stage is None:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, value = arguments.partition("=")
            arguments_before_from[name] = value
            continue
        if keyword in ("COPY", "ADD"):
            flags, words = split_flags(arguments)
            *sources, destination = words
            if "from" in flags:
                origin = stages.get(flags["from"].lower())
                if origin is not None:
                    copy_from_stage(stage, origin, sources, destination)
            else:
                stage.files.update(copy_sources(stage, sources, destination))
        elif keyword == "WORKDIR":
            stage.workdir = stage.path(arguments)
        elif keyword == "ENV":
            for word in shlex.split(arguments):
                name, _, value = word.partition("=")
                stage.env[name] = stage.expand(value)
        elif keyword == "RUN":
            run(stage, arguments)
        elif keyword == "ENTRYPOINT":
            stage.entrypoint, stage.cmd = exec_form(arguments), None  # Docker resets an inherited CMD
        elif keyword == "CMD":
            stage.cmd = exec_form(arguments)
        elif keyword == "HEALTHCHECK":
            _options, _, command = arguments.partition("CMD ")
            stage.healthcheck = exec_form(command.strip()) if command else None
    return stages


@functools.cache
def stages() -> dict[str, Stage]:
    return parse(DOCKERFILE.read_text())


# ---- following imports ---------------------------------------------------------------------------------------

def imports_of(source: str) -> list[tuple[str, list[str], int]]:
    """(module, names, level) of every import that can run: function bodies included; `if TYPE_CHECKING:` and
    `try: ... except ImportError:` (optional imports) left out."""
    found = []

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                    isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Try(self, node: ast.Try) -> None:
            caught = {ast.unparse(handler.type) for handler in node.handlers if handler.type is not None}
            if not caught & {"ImportError", "ModuleNotFoundError"}:
                self.generic_visit(node)
                return
            for child in node.handlers + node.orelse + node.finalbody:
                self.visit(child)

        def visit_Import(self, node: ast.Import) -> None:
            found.extend((alias.name, [], 0) for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module != "__future__":
                found.append((node.module or "", [alias.name for alias in node.names], node.level))

    Visitor().visit(ast.parse(source))
    return found


def repository_module(name: str) -> Path | None:
    """The repository's source of a project module: a .py file, a package's __init__.py, or a namespace package's
    directory."""
    path = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return path if path.is_dir() else None


def in_image(stage: Stage, root: PurePosixPath, name: str) -> bool:
    path = root.joinpath(*name.split("."))
    if path.with_suffix(".py") in stage.files or path / "__init__.py" in stage.files:
        return True
    # A namespace package: there in the image if any file is, and the repository has no __init__.py to miss.
    return not (REPO_ROOT.joinpath(*name.split(".")) / "__init__.py").exists() and any(
        path in image_path.parents for image_path in stage.files)


@dataclass
class Reach:
    project: dict[str, str] = field(default_factory=dict)  # module -> the module that imports it first
    missing: list[str] = field(default_factory=list)
    third_party: dict[str, str] = field(default_factory=dict)  # top-level name -> a module that imports it


def entry_point(stage: Stage, command: list[str]) -> tuple[PurePosixPath, str | None, str | None]:
    """(sys.path[0], module run with -m, repository path of the script run) of a `python ...` command."""
    assert PurePosixPath(command[0]).name.startswith("python"), f"{command}: not a Python entry point"
    if "-m" in command:
        return stage.workdir, command[command.index("-m") + 1], None
    script = stage.path(next(word for word in command[1:] if word.endswith(".py")))
    assert script in stage.files, f"{command}: {script} is not in the image"
    return script.parent, None, stage.files[script]


def follow(stage: Stage, command: list[str]) -> Reach:
    root, module, script = entry_point(stage, command)
    reach = Reach()
    todo: list[tuple[str, Path, str]] = []  # (module name, source, is it a package) still to read

    def reached(name: str, importer: str) -> None:
        parts = name.split(".")
        if parts[0] not in PROJECT_PACKAGES:
            if parts[0] not in sys.stdlib_module_names:
                reach.third_party.setdefault(parts[0], importer)
            return
        for depth in range(1, len(parts) + 1):  # importing a.b.c imports a and a.b first
            prefix = ".".join(parts[:depth])
            if prefix in reach.project:
                continue
            reach.project[prefix] = importer
            source = repository_module(prefix)
            assert source is not None, f"{importer} imports {prefix}, which is not in the repository"
            if not in_image(stage, root, prefix):
                reach.missing.append(f"{prefix} (imported by {importer})")
            if source.is_file():
                todo.append((prefix, source, source.name == "__init__.py"))

    if module is not None:
        reached(module, " ".join(command))
    else:
        todo.append(("__main__", REPO_ROOT / script, False))
    while todo:
        name, source, is_package = todo.pop()
        package = name if is_package else name.rpartition(".")[0]
        for imported, names, level in imports_of(source.read_text()):
            if level:
                base = package.rsplit(".", level - 1)[0] if level > 1 else package
                imported = f"{base}.{imported}" if imported else base
            reached(imported, name)
            for member in names:  # `from package import module`: a submodule is imported too
                submodule = f"{imported}.{member}"
                if imported.split(".")[0] in PROJECT_PACKAGES and repository_module(submodule) is not None:
                    reached(submodule, name)
    return reach


# ---- what pip installs ---------------------------------------------------------------------------------------

@functools.cache
def distributions_of_imports() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def installed_closure(requirements: tuple[str, ...]) -> set[str]:
    """The distributions pip installs for these requirements: them and their dependencies (read from this
    environment's metadata: the same pinned versions, the same Python minor version)."""
    closure: set[str] = set()
    todo = [Requirement(requirement) for requirement in requirements]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in closure:
            continue
        closure.add(name)
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for dependency in map(Requirement, distribution.requires or []):
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                todo.append(dependency)
    return closure


def importable(requirements: tuple[str, ...]) -> set[str]:
    closure = installed_closure(requirements)
    return {name for name, distributions in distributions_of_imports().items()
            if any(canonicalize_name(distribution) in closure for distribution in distributions)}


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


# ---- the tests -----------------------------------------------------------------------------------------------

def test_one_dockerfile_with_a_poller_and_a_job_target() -> None:
    assert [path.name for path in REPO_ROOT.glob("Dockerfile*")] == ["Dockerfile"]
    for target in TARGETS:
        assert target in stages(), f"no stage named {target}"
        assert stages()[target].entry_commands(), f"{target} has no entry point"
    assert [name for name in PROJECT_PACKAGES if not (REPO_ROOT / name).is_dir()] == []


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_copied_path_exists() -> None:
    sources = []
    for keyword, arguments in instructions(DOCKERFILE.read_text()):
        if keyword in ("COPY", "ADD"):
            flags, words = split_flags(arguments)
            if "from" not in flags:
                sources += words[:-1]
    assert sources
    missing = [source for source in sources if not any(REPO_ROOT.glob(source))]
    assert missing == [], f"the Dockerfile copies what the repository does not have: {missing}"


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_runs_the_projects_python(target) -> None:
    base = stages()[target].base
    match = re.fullmatch(r"(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)[.\w-]*", base)
    assert match, f"{target} starts from {base}, not an official python image"
    supported = SpecifierSet(pyproject()["project"]["requires-python"])
    assert f"{match.group(1)}.0" in supported, f"{target} runs Python {match.group(1)}; pyproject says {supported}"


@pytest.mark.parametrize("target", TARGETS)
def test_pins_match_pyproject(target) -> None:
    pinned = {}
    for requirement in map(Requirement, pyproject()["project"]["dependencies"]):
        for specifier in requirement.specifier:
            if specifier.operator == "==":
                pinned[canonicalize_name(requirement.name)] = specifier.version
    installs = [Requirement(install.requirement) for install in stages()[target].installs]
    assert installs, f"{target} installs nothing"
    versions = {}
    for requirement in installs:
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{target}: {requirement} is not pinned"
        name = canonicalize_name(requirement.name)
        versions[name] = specifiers[0].version
        if name in pinned:
            assert versions[name] == pinned[name], f"{target}: {requirement}, pyproject.toml pins {pinned[name]}"
    # A pin pyproject.toml does not make (urllib3): it must suit the pinned distributions that depend on it.
    for name in versions:
        for dependency in map(Requirement, importlib.metadata.distribution(name).requires or []):
            other = canonicalize_name(dependency.name)
            if other in versions and (dependency.marker is None or dependency.marker.evaluate({"extra": ""})):
                assert dependency.specifier.contains(versions[other], prereleases=True), \
                    f"{target}: {other}=={versions[other]}, but {name} requires {dependency}"


@pytest.mark.parametrize("target", TARGETS)
def test_entry_points_import_only_what_the_image_holds(target) -> None:
    stage = stages()[target]
    for command in stage.entry_commands():
        reach = follow(stage, command)
        assert reach.project, f"{command}: reached no project module"
        assert reach.missing == [], f"{target} runs {command} without copying: {reach.missing}"
        prefix = stage.prefix_of(command[0])
        available = importable(tuple(stage.requirements(prefix)))
        missing = {name: importer for name, importer in reach.third_party.items() if name not in available}
        assert missing == {}, (f"{target}: {command[0]} ({prefix}) has not installed what these modules import: "
                               f"{missing}; installed there: {stage.requirements(prefix)}")


@pytest.mark.parametrize("target", EXACT_TARGETS)
def test_target_copies_no_module_it_does_not_import(target) -> None:
    stage = stages()[target]
    needed = set()
    for command in stage.entry_commands():
        root = entry_point(stage, command)[0]
        for module in follow(stage, command).project:
            path = root.joinpath(*module.split("."))
            needed |= {path.with_suffix(".py"), path / "__init__.py"}
    extra = sorted(str(path) for path in stage.files if path.suffix == ".py" and path not in needed)
    assert extra == [], f"{target} copies modules its entry points never import: {extra}"
