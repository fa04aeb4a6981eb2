"""Keep this project up to date with the template it came from, with cruft or with copier.

    python3 scripts/template.py check    # exit 1 when the template has moved on
    python3 scripts/template.py update   # apply the template's changes; exit 1 on a conflict

The answers file says which tool made the project: ``.cruft.json`` (cruft) or
``.copier-answers.yml`` (copier). The tool runs through ``uvx`` unless ``CRUFT`` or ``COPIER``
names a command. ``update`` refuses to start on uncommitted changes, and fails, naming the files,
when the merge left conflict markers or ``.rej`` files: cruft reports success in that case.
This script belongs to the template; docs/updating.md says more. It needs only Python and git.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "{{ cookiecutter.package }}"
CRUFT_ANSWERS = ROOT / ".cruft.json"
COPIER_ANSWERS = ROOT / ".copier-answers.yml"
VERSION_TAG = re.compile(r"v?\d+\.\d+\.\d+")
# Lines git and copier write into a file they could not merge.
MARKERS = re.compile(r"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)


class UpdateError(Exception):
    """Why the script stopped, in a sentence that says what to do."""


def git(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise UpdateError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def command(variable: str, default: str) -> list[str]:
    return shlex.split(os.environ.get(variable, default))


def cruft() -> list[str]:
    return command("CRUFT", "uvx cruft")


def copier() -> list[str]:
    return command("COPIER", "uvx --with copier-template-extensions copier")


def answers() -> tuple[str, str, str]:
    """The tool that made this project, its template and the template commit it is at."""
    if CRUFT_ANSWERS.exists():
        recorded = json.loads(CRUFT_ANSWERS.read_text(encoding="utf-8"))
        return "cruft", recorded["template"], recorded["commit"]
    if COPIER_ANSWERS.exists():
        # The two keys are plain one-line scalars, so no YAML parser is needed.
        text = COPIER_ANSWERS.read_text(encoding="utf-8")
        found = dict(re.findall(r"^(_src_path|_commit): *'?([^'\n]*)'?$", text, re.MULTILINE))
        if {"_src_path", "_commit"} <= found.keys():
            return "copier", found["_src_path"], found["_commit"]
    raise UpdateError(
        "this project is not linked to its template (no .cruft.json or .copier-answers.yml); "
        "link it as docs/updating.md says, then run this again"
    )


def refuse_uncommitted_changes() -> None:
    changed = git("status", "--porcelain").splitlines()
    if changed:
        shown = ", ".join(line[3:] for line in changed[:5])
        raise UpdateError(
            f"the project has uncommitted changes ({shown}{', ...' if len(changed) > 5 else ''});"
            " commit or stash them first, so that the update is one diff you can review"
        )


def refuse_unknown_version(clone: Path, template: str, commit: str) -> None:
    """Fail clearly, before the tool does obscurely, if the template lacks the recorded commit."""
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", commit + "^{commit}"],
        cwd=clone,
        capture_output=True,
    )
    if known.returncode != 0:
        answers_file = CRUFT_ANSWERS if CRUFT_ANSWERS.exists() else COPIER_ANSWERS
        raise UpdateError(
            f"{answers_file.name} says this project is at template version {commit!r}, which "
            f"{template} does not have; set it to the commit or tag the project was generated "
            "or last updated from"
        )


def dropped_changes(clone: Path, old: str, new: str) -> list[str]:
    """Files the template changed between ``old`` and ``new`` that this project deleted, so
    that the update left the change out (both tools do, without a word)."""
    team = team_paths()
    dropped = []
    for name in git("diff", "--name-only", old, new, cwd=clone).splitlines():
        # The template's names are Jinja: its project folder, then e.g. src/<package folder>/.
        folder, *parts = name.split("/")
        if not (folder.startswith("{") and "project" in folder):
            continue
        path = "/".join(PACKAGE if "package" in part and "{" in part else part for part in parts)
        in_team_paths = any(path == t or path.startswith(t + "/") for t in team)
        if "{" not in path and not in_team_paths and not (ROOT / path).exists():
            dropped.append(path)
    return dropped


def conflicts() -> list[str]:
    """Files the update left with conflict markers, and its .rej files."""
    changed = git("diff", "--name-only", "HEAD").splitlines()
    changed += git("ls-files", "--others", "--exclude-standard").splitlines()
    found: list[str] = []
    for name in sorted(set(changed)):
        path = ROOT / name
        if name.endswith(".rej"):
            found.append(f"{name} (the part of a change that did not apply)")
        elif path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            if MARKERS.search(text):
                found.append(f"{name} (conflict markers)")
    return found


def newest_release(template: str) -> str:
    """The template's newest version tag, or its HEAD commit if it has none: what copier takes."""
    tags = [
        ref.removeprefix("refs/tags/")
        for ref in git("ls-remote", "--tags", "--refs", template).split()[1::2]
    ]
    versions = sorted(
        (tag for tag in tags if VERSION_TAG.fullmatch(tag)),
        key=lambda tag: tuple(int(part) for part in tag.lstrip("v").split(".")),
    )
    return versions[-1] if versions else git("ls-remote", template, "HEAD").split()[0]


def team_paths() -> list[str]:
    """The team's files, which updates never touch: ``[tool.cruft] skip`` in pyproject.toml
    (copier's ``_skip_if_exists`` in the template lists the same)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [path for path in pyproject["tool"]["cruft"]["skip"] if path != ".git"]


def keep_team_files() -> list[str]:
    """Undo what the update did to the team's files, and return what it had changed.

    cruft skips them. copier brings back a skipped file the team had deleted, and merges into
    any the template changed that it does not skip. The update started from a clean tree, so
    whatever differs from HEAD under the team's paths came from the update.
    """
    paths = team_paths()
    changed = git("diff", "--name-only", "HEAD", "--", *paths).splitlines()
    added = git("ls-files", "--others", "--exclude-standard", "--", *paths).splitlines()
    if changed:
        git("checkout", "HEAD", "--", *changed)
    for name in added:
        (ROOT / name).unlink()
    return sorted(changed + added)


def check() -> int:
    try:
        tool, template, commit = answers()
    except UpdateError as exc:
        # Not an error in CI: a project generated by plain cookiecutter can still work fine.
        print(f"::warning::{exc}", file=sys.stderr)
        return 0
    if tool == "cruft":
        result = subprocess.run([*cruft(), "check"], cwd=ROOT)
        newest = "" if result.returncode == 0 else "newer commits"
    else:
        newest = newest_release(template)
        # copier records a tag, or a commit's short hash when the template has no tags.
        if commit == newest or newest.startswith(commit.rpartition("-g")[2]):
            newest = ""
    if newest:
        print(
            f"The template has moved on: this project is at {commit}, {template} has {newest}. "
            "Run `python3 scripts/template.py update` and read its CHANGELOG.md.",
            file=sys.stderr,
        )
        return 1
    print(f"Up to date with {template} ({commit}).")
    return 0


def update() -> int:
    tool, template, commit = answers()
    refuse_uncommitted_changes()
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder)
        git("clone", "--quiet", "--no-checkout", template, folder, cwd=clone)
        refuse_unknown_version(clone, template, commit)
        if tool == "cruft":
            run = [*cruft(), "update", "--skip-apply-ask"]
        else:
            run = [*copier(), "update", "--trust", "--defaults", "--conflict", "inline"]
        result = subprocess.run(run, cwd=ROOT)
        if result.returncode != 0:
            raise UpdateError(f"{' '.join(run)} failed with status {result.returncode} (see above)")
        dropped = dropped_changes(clone, commit, answers()[2])
    if dropped:
        print(
            "The template changed files this project deleted, so the update left those changes "
            f"out: {', '.join(dropped)}. Compare with the template if you want them back.",
            file=sys.stderr,
        )
    kept = keep_team_files()
    if kept:
        print(f"Kept your files as they were, undoing the update's changes to: {', '.join(kept)}")
    left = conflicts()
    if left:
        print("The update left conflicts; resolve them, then commit:", file=sys.stderr)
        for line in left:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("Updated. Review `git diff`, run `uv lock` and the checks, then commit.")
    return 0


def main(argv: list[str]) -> int:
    if argv not in (["check"], ["update"]):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return check() if argv == ["check"] else update()
    except UpdateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
