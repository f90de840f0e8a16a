"""``mailflow templates``: list, show, validate, preview, edit, publish, roll back, diff.

The commands call the services the templates API calls (``mailflow.services.templates``). A
template with problems is refused as the API refuses it with a 422: one line per problem,
``part:line: message`` (``part: message`` when the problem has no line), on stderr, and exit
status 2. ``edit`` opens ``$EDITOR`` (else ``vi``) on one file holding the three parts under
marker lines, validates the file once the editor exits and saves it as a draft: it never
publishes.
"""

from __future__ import annotations

import argparse
import difflib
import getpass
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import jinja2

from mailflow.cli._common import (
    CliError,
    Refused,
    Subparsers,
    add_json_option,
    command,
    open_data,
    print_json,
)
from mailflow.mail import catalog
from mailflow.mail.formatting import SUPPORTED_LOCALES
from mailflow.mail.templates import TemplateSource
from mailflow.mail.validation import Problem
from mailflow.services import templates
from mailflow.services.context import ServiceContext
from mailflow.services.errors import InvalidInput, ServiceError

PARTS = ("subject", "text", "html")
MARKERS = {part: f"### {part} ###" for part in PARTS}
EDIT_HEADER = (
    "# mailflow templates edit {key} {locale}, from version {version}.\n"
    "# The three parts follow, each under its marker line ({markers}):\n"
    "# keep the marker lines. The lines above the first one, these included, are ignored.\n"
    "# Save and quit to validate and save a draft (it is not published); empty the file to\n"
    "# give up.\n"
)
_FIELDS = {"sale_id": "--sale", "version": "VERSION"}


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """Add ``templates`` and its commands to the top-level subparsers ``sub``."""
    parser = command(
        sub, "templates", _run, help="email templates: list, show, validate, preview, edit, publish"
    )
    commands = parser.add_subparsers(dest="templates_command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list", parents=[common], help="keys and locales: published and latest versions, drift"
    )
    add_json_option(listing)

    def keyed(name: str, text: str) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("key", metavar="KEY", help="email key, e.g. seller_new_sale")
        command.add_argument("locale", metavar="LOCALE", help=", ".join(SUPPORTED_LOCALES))
        return command

    show = keyed("show", "the source of a version (default: the published one)")
    show.add_argument("--version", type=int, metavar="N", help="this version (0: shipped)")
    show.add_argument("--part", choices=PARTS, help="print only this part, as it is stored")
    add_json_option(show)

    validate = keyed("validate", "check the given files, else the published version")
    _file_options(validate, "check this file as the {part} part")

    preview = keyed("preview", "render the published version (or given files) as it is sent")
    preview.add_argument("--sale", type=int, metavar="ID", help="with this sale's data")
    preview.add_argument("--part", choices=PARTS, help="print only this rendered part")
    add_json_option(preview)
    _file_options(preview, "render this file as the {part} part")

    edit = keyed("edit", "edit in $EDITOR, validate, save a draft (not published)")
    edit.add_argument("--version", type=int, metavar="N", help="start from this version")

    for name, text in (
        ("publish", "make VERSION the one sent (0: the shipped default)"),
        ("rollback", "publish an earlier VERSION again (0: the shipped default)"),
        ("diff", "how the shipped default changed since VERSION was edited from it"),
    ):
        versioned = keyed(name, text)
        versioned.add_argument("version", type=int, metavar="VERSION")
        if name == "diff":
            add_json_option(versioned)


def _file_options(parser: argparse.ArgumentParser, text: str) -> None:
    for part in PARTS:
        parser.add_argument(f"--{part}", metavar="FILE", help=text.format(part=part))


def _run(args: argparse.Namespace) -> int:
    command = args.templates_command
    if command != "list":
        _check_key(args.key, args.locale)
    given = _read_files(args) if command in ("validate", "preview") else {}
    system = open_data(args)
    try:
        return HANDLERS[command](system.services, args, given)
    except templates.TemplateInvalid as exc:
        _print_problems(exc.problems)
        count = len(exc.problems)
        what = f"{args.key}/{args.locale}"
        print(
            f"mailflow: {what}: {count} problem{'s' if count != 1 else ''}, nothing was changed",
            file=sys.stderr,
        )
        return Refused.status
    except InvalidInput as exc:
        field = _FIELDS.get(exc.field, exc.field)
        raise Refused(f"{field}: {exc.message.removeprefix(exc.field + ': ')}") from exc
    except ServiceError as exc:
        raise Refused(exc.message) from exc
    except jinja2.TemplateError as exc:
        # A template Jinja refuses to compile, should validation miss it: one line, not a trace
        # (without Jinja's line: inside a block it is not the part's line).
        raise Refused(f"template error, nothing was changed: {exc.message}") from exc
    finally:
        system.close()


def _check_key(key: str, locale: str) -> None:
    if key not in catalog.KINDS:
        close = difflib.get_close_matches(key, list(catalog.KINDS), n=1)
        hint = f"did you mean {close[0]}?" if close else "`mailflow templates list` shows them"
        raise CliError(f"no email key {key!r} ({hint})")
    if locale not in SUPPORTED_LOCALES:
        raise CliError(f"no locale {locale!r} (there are: {', '.join(SUPPORTED_LOCALES)})")


def _read_files(args: argparse.Namespace) -> dict[str, str]:
    given = {}
    for part in PARTS:
        path = getattr(args, part)
        if path is None:
            continue
        try:
            given[part] = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--{part} {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CliError(f"--{part} {path}: not UTF-8 text") from exc
    return given


def problem_line(problem: Problem) -> str:
    where = f"{problem.part}:{problem.line}" if problem.line else problem.part
    return f"{where}: {problem.message}"


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        print(problem_line(problem), file=sys.stderr)


def _as_file(parts: dict[str, str]) -> str:
    """The three parts under their marker lines, each ending with a line break."""
    chunks = []
    for part in PARTS:
        body = parts[part]
        if body and not body.endswith("\n"):
            body += "\n"
        chunks.append(f"{MARKERS[part]}\n{body}")
    return "".join(chunks)


class _FileProblem(ValueError):
    """The edited file lost its shape (a marker line missing, repeated or moved)."""


def parse_file(content: str) -> dict[str, str]:
    """The three parts of an edited file; what precedes the first marker line is dropped."""
    lines = content.splitlines(keepends=True)
    found: dict[str, int] = {}
    for index, line in enumerate(lines):
        for part, marker in MARKERS.items():
            if line.strip() == marker:
                if part in found:
                    raise _FileProblem(f"the marker line {marker} appears twice")
                found[part] = index
    missing = [MARKERS[part] for part in PARTS if part not in found]
    if missing:
        raise _FileProblem(
            f"the marker line{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} missing"
        )
    starts = [found[part] for part in PARTS]
    if starts != sorted(starts):
        raise _FileProblem(
            f"the marker lines must stay in this order: {', '.join(MARKERS.values())}"
        )
    ends = [*starts[1:], len(lines)]
    return {
        part: "".join(lines[start + 1 : end])
        for part, start, end in zip(PARTS, starts, ends, strict=True)
    }


# --- commands ---------------------------------------------------------------------------


def _list(ctx: ServiceContext, args: argparse.Namespace, given: dict[str, str]) -> int:
    rows = templates.list_templates(ctx)
    if args.json:
        print_json(rows)
        return 0
    width = max(len(row["key"]) for row in rows)
    print(f"{'key':<{width}}  locale  published  latest  default changed")
    for row in rows:
        changed = "yes" if row["default_changed"] else "no"
        print(
            f"{row['key']:<{width}}  {row['locale']:<6}  {row['published_version']:>9}  "
            f"{row['latest_version']:>6}  {changed}"
        )
    if any(row["default_changed"] for row in rows):
        print(
            "default changed: the shipped files changed since the published version was edited "
            "from them; see `mailflow templates diff KEY LOCALE VERSION`"
        )
    return 0


def _show(ctx: ServiceContext, args: argparse.Namespace, given: dict[str, str]) -> int:
    view = templates.show(ctx, args.key, args.locale, args.version)
    if args.json:
        print_json(view)
        return 0
    if args.part:
        sys.stdout.write(view[args.part])
        return 0
    version = view["version"]
    notes = ["the shipped default"] if version == 0 else []
    notes += ["published"] if version == view["published_version"] else ["not published"]
    print(f"# {args.key}/{args.locale} version {version}: {', '.join(notes)}")
    if version:
        changed = "yes" if view["default_changed"] else "no"
        print(f"# shipped default changed since this version was edited from it: {changed}")
    print(f"# variables: {', '.join(sorted(view['variables']))}, locale")
    if view["requires"]:
        print(f"# must show: {', '.join(view['requires'])}")
    versions = ["0 (shipped)" + (" published" if view["published_version"] == 0 else "")]
    for draft in view["drafts"]:
        when = draft["created_at"].strftime("%Y-%m-%d %H:%M")
        author = f"{draft['author']}, " if draft["author"] else ""
        versions.append(
            f"{draft['version']} ({author}{when})" + (" published" if draft["published"] else "")
        )
    print(f"# versions: {'; '.join(versions)}")
    sys.stdout.write(_as_file(view))
    return 0


def _validate(ctx: ServiceContext, args: argparse.Namespace, given: dict[str, str]) -> int:
    current = templates.show(ctx, args.key, args.locale)
    source = TemplateSource(*(given.get(part, current[part]) for part in PARTS))
    problems = templates.check(ctx, args.key, args.locale, source)
    if given:
        what = "the given " + ", ".join(part for part in PARTS if part in given)
        if len(given) < len(PARTS):
            what += f" (the other parts: published version {current['version']})"
    else:
        what = f"published version {current['version']}"
    if problems:
        raise templates.TemplateInvalid(problems)
    print(f"{args.key}/{args.locale}: {what}: valid")
    return 0


def _preview(ctx: ServiceContext, args: argparse.Namespace, given: dict[str, str]) -> int:
    rendered = templates.preview(
        ctx,
        args.key,
        args.locale,
        subject=given.get("subject"),
        text=given.get("text"),
        html=given.get("html"),
        sale_id=args.sale,
    )
    if args.json:
        print_json(rendered)
        return 0
    if args.part:
        content = rendered[args.part]
        sys.stdout.write(content if content.endswith("\n") else content + "\n")
        return 0
    sys.stdout.write(_as_file(rendered))
    return 0


def _publish(ctx: ServiceContext, args: argparse.Namespace, given: dict[str, str]) -> int:
    if args.version < 0:
        raise CliError("VERSION: must be 0 or more")  # a usage error (2), not a refusal (1)
    view = templates.publish(ctx, args.key, args.locale, args.version)
    version = view["published_version"]
    origin = " (the shipped default)" if version == 0 else ""
    if args.templates_command == "rollback":
        print(f"{args.key}/{args.locale} rolled back to version {version}{origin}")
    else:
        print(f"{args.key}/{args.locale}: version {version}{origin} published")
    return 0


def _diff(ctx: ServiceContext, args: argparse.Namespace, given: dict[str, str]) -> int:
    if args.version < 1:
        raise CliError("VERSION must be 1 or more (version 0 is the shipped default itself)")
    result = templates.diff(ctx, args.key, args.locale, args.version)
    if args.json:
        print_json(result)
        return 0
    if not result["default_changed"]:
        print(
            f"{args.key}/{args.locale}: the shipped default has not changed since version "
            f"{args.version} was edited from it"
        )
        return 0
    for part in PARTS:
        text = result["diff"][part]
        if text:
            print(f"### {part} ###")
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _edit(ctx: ServiceContext, args: argparse.Namespace, given: dict[str, str]) -> int:
    view = templates.show(ctx, args.key, args.locale, args.version)
    published = view["version"] == view["published_version"]
    body = _as_file({part: view[part] for part in PARTS})
    unchanged = parse_file(body)
    header = EDIT_HEADER.format(
        key=args.key,
        locale=args.locale,
        version=f"{view['version']}{' (published)' if published else ''}",
        markers=", ".join(MARKERS.values()),
    )
    handle, name = tempfile.mkstemp(prefix=f"mailflow-{args.key}-{args.locale}-", suffix=".j2")
    os.close(handle)
    path = Path(name)
    keep = False
    try:
        path.write_text(header + body, encoding="utf-8")
        while True:
            _run_editor(path)
            problems, content = _try_save(ctx, args, path, unchanged, view["version"])
            if not problems:
                return 0
            for line in problems:
                print(line, file=sys.stderr)
            if not _ask_again():
                keep = True
                count = len(problems)
                print(
                    f"mailflow: {args.key}/{args.locale}: {count} problem"
                    f"{'s' if count != 1 else ''}, nothing was saved; your edit is in {path}",
                    file=sys.stderr,
                )
                return 2
            if content is not None:
                notes = "".join(f"#   {line}\n" for line in problems)
                path.write_text(
                    header + "# Problems found in the last save:\n" + notes + _body_of(content),
                    encoding="utf-8",
                )
    finally:
        if not keep:
            path.unlink(missing_ok=True)


def _try_save(
    ctx: ServiceContext,
    args: argparse.Namespace,
    path: Path,
    unchanged: dict[str, str],
    version: int,
) -> tuple[list[str], str | None]:
    """Validate the edited file and save it as a draft: the problems (none once saved) and the
    file's text (None when it is not UTF-8)."""
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ["file: not UTF-8 text"], None
    if not content.strip():
        print("the file is empty: nothing was saved")
        return [], content
    try:
        parts = parse_file(content)
    except _FileProblem as exc:
        return [f"file: {exc}"], content
    if parts == unchanged:
        print(f"no changes to version {version}: nothing was saved")
        return [], content
    try:
        saved = templates.save_draft(
            ctx,
            args.key,
            args.locale,
            parts["subject"],
            parts["text"],
            parts["html"],
            author=_author(),
        )
    except templates.TemplateInvalid as exc:
        return [problem_line(problem) for problem in exc.problems], content
    except jinja2.TemplateError as exc:  # should validation miss it (see ``_run``)
        return [f"template: {exc.message}"], content
    print(
        f"{args.key}/{args.locale}: draft version {saved} saved (not published; to publish it: "
        f"mailflow templates publish {args.key} {args.locale} {saved})"
    )
    return [], content


def _body_of(content: str) -> str:
    """The edited file without the comment lines above its first marker line."""
    lines = content.splitlines(keepends=True)
    markers = set(MARKERS.values())
    for index, line in enumerate(lines):
        if line.strip() in markers or not line.startswith("#"):
            return "".join(lines[index:])
    return ""


def _run_editor(path: Path) -> None:
    editor = os.environ.get("EDITOR", "").strip() or "vi"
    try:
        command = shlex.split(editor)
    except ValueError as exc:
        raise CliError(f"$EDITOR {editor!r}: {exc}") from exc
    try:
        status = subprocess.call([*command, str(path)])
    except OSError as exc:
        raise CliError(f"cannot run the editor {command[0]!r}: {exc.strerror or exc}") from exc
    if status != 0:
        raise CliError(f"the editor {command[0]!r} exited with status {status}; nothing was saved")


def _ask_again() -> bool:
    """Whether to open the editor again; with no terminal to ask on, no."""
    stdin = sys.stdin
    try:
        interactive = stdin is not None and stdin.isatty()
    except (ValueError, OSError):
        interactive = False
    if not interactive:
        print("stdin is not a terminal: not asking whether to edit again", file=sys.stderr)
        return False
    while True:
        print("[e]dit again / [q]uit: ", end="", file=sys.stderr, flush=True)
        answer = stdin.readline()
        if not answer:
            return False
        answer = answer.strip().lower()
        if answer in ("e", "edit"):
            return True
        if answer in ("q", "quit"):
            return False


def _author() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError, ImportError):
        return "cli"


HANDLERS: dict[str, Callable[[ServiceContext, argparse.Namespace, dict[str, str]], int]] = {
    "list": _list,
    "show": _show,
    "validate": _validate,
    "preview": _preview,
    "edit": _edit,
    "publish": _publish,
    "rollback": _publish,
    "diff": _diff,
}
