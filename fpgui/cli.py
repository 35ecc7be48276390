"""The ``fpgui`` command line: build, check and look after a protected-image library.

Every command takes ``--library DIR`` (default: ``FPGUI_LIBRARY``, else the user data dir),
``--device`` and ``--model DIR``. Progress goes to stderr, results to stdout. Exit status: 0 when
everything succeeded, 1 when something failed (a file that could not be added, a query that could
not be checked, a library that does not verify), 2 for usage errors, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from fpgui import __version__
from fpgui.core.errors import FpguiError, ImageLoadError
from fpgui.core.paths import default_library_dir
from fpgui.core.settings import Settings, load_settings

if TYPE_CHECKING:
    # The library pulls in torch; imported where used so that ``fpgui`` shows its window fast.
    from fpgui.core.library import AddProgress, AddSummary, Library

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
NON_TTY_PROGRESS_EVERY_S = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = getattr(args, "handler", _run_gui)
    try:
        return handler(args)
    except FpguiError as exc:
        print(f"fpgui: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\nfpgui: interrupted; what was finished is kept", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before or after the command: ``fpgui --library L add X`` and
    # ``fpgui add --library L X``. On the sub-commands they default to SUPPRESS so that they do not
    # overwrite a value given before the command.
    def add_globals(target: argparse.ArgumentParser, suppress: bool) -> None:
        default = argparse.SUPPRESS if suppress else None
        target.add_argument(
            "--library", type=Path, metavar="DIR", default=default,
            help="library folder (default: $FPGUI_LIBRARY or one in the user data folder)",
        )  # fmt: skip
        target.add_argument(
            "--device", default=default, metavar="DEVICE",
            help="cpu, cuda, cuda:N, mps or auto (default: the settings' choice, else auto)",
        )  # fmt: skip
        target.add_argument(
            "--model", type=Path, metavar="DIR", default=default,
            help="model folder (default: the adopted model, else the bundled one)",
        )  # fmt: skip

    parser = argparse.ArgumentParser(
        prog="fpgui",
        description="Tell whether an image is a modified copy of one in your protected library.",
    )
    parser.add_argument("--version", action="version", version=f"fpgui {__version__}")
    add_globals(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, help_text: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_globals(sub, suppress=True)
        sub.set_defaults(handler=handler)
        return sub

    add = command("add", "add image files and folders (recursively) to the library", _cmd_add)
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    check = command("check", "check images (or folders of images) against the library", _cmd_check)
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.add_argument("--top-k", type=_positive_int, default=5, metavar="N",
                       help="how many nearest library images to report (default 5)")  # fmt: skip
    check.add_argument("--json", action="store_true", help="one JSON object per query per line")

    listing = command("list", "list the protected images", _cmd_list)
    listing.add_argument("--json", action="store_true", help="one JSON object per image per line")

    remove = command("remove", "stop protecting files or everything under folders", _cmd_remove)
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    verify = command("verify", "check that catalogue, index, model and files agree", _cmd_verify)
    verify.add_argument(
        "--repair",
        action="store_true",
        help="fix what can be fixed (re-embeds if the model changed)",
    )

    command("info", "show the model, device, counts and sizes", _cmd_info)
    command("gui", "start the desktop application (the default)", _run_gui)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


# -- shared set-up --------------------------------------------------------------------------------


def _settings() -> Settings:
    return load_settings()


def _library_dir(args: argparse.Namespace) -> Path:
    chosen: Path | None = getattr(args, "library", None)
    if chosen is not None:
        return chosen.expanduser()
    saved = _settings().library_path
    if saved and not os.environ.get("FPGUI_LIBRARY"):
        return Path(saved).expanduser()
    return default_library_dir()


def _open_library(args: argparse.Namespace, *, create: bool = False) -> Library:
    from fpgui.core.embedder import Embedder, require_model  # torch: only when needed
    from fpgui.core.library import Library
    from fpgui.core.model_store import active_model_dir

    model_dir = require_model(getattr(args, "model", None) or active_model_dir())
    device = getattr(args, "device", None) or _settings().device_or_none
    if device == "auto":
        device = None
    return Library.open(
        _library_dir(args), lambda: Embedder(model_dir, device=device), create=create
    )


class _ProgressLine:
    """A one-line counter on a terminal; a line every few seconds when stderr is a file or pipe."""

    def __init__(self, stream: TextIO, verb: str) -> None:
        self.stream = stream
        self.verb = verb
        self.tty = stream.isatty()
        self._last = 0.0
        self._shown = False

    def update(self, progress: AddProgress) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self._last < 0.1 and progress.done != progress.total:
                return
            name = Path(progress.path).name if progress.path else ""
            counter = (
                f"scanning: {progress.total} files found"
                if progress.phase == "scanning"
                else f"{self.verb} {progress.done}/{progress.total}"
            )
            self.stream.write(f"\r\033[K{counter}  {name[:60]}")
            self.stream.flush()
            self._shown = True
        elif now - self._last >= NON_TTY_PROGRESS_EVERY_S:
            s = progress.summary
            self.stream.write(
                f"fpgui: {self.verb} {progress.done}/{progress.total} files "
                f"({s.added + s.updated + s.reembedded} fingerprinted, {len(s.failed)} failed)\n"
            )
            self.stream.flush()
        else:
            return
        self._last = now

    def finish(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _print_summary(summary: AddSummary, out: TextIO) -> None:
    counts = summary.counts_text(always=("added", "unchanged", "duplicates", "failed"))
    status = " (cancelled)" if summary.cancelled else ""
    print(f"{counts}{status}", file=out)
    for path, original in summary.duplicates:
        print(f"  duplicate: {path} (same file as {original})", file=out)
    for old, new in summary.moved:
        print(f"  moved: {old} -> {new}", file=out)
    for path, reason in summary.failed:
        print(f"  failed: {path}: {reason}", file=out)


# -- commands -------------------------------------------------------------------------------------


def _cmd_add(args: argparse.Namespace) -> int:
    from fpgui.core.library import AddSummary

    with _open_library(args, create=True) as library:
        line = _ProgressLine(sys.stderr, "adding")
        summary = AddSummary()
        try:
            for progress in library.add(args.paths):
                summary = progress.summary
                line.update(progress)
        finally:
            line.finish()
        _print_summary(summary, sys.stdout)
        _warn_not_fingerprinted(library)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from fpgui.core.matching import check, error_json_dict
    from fpgui.core.scanning import ScanFailure, scan_image_files

    threshold = _settings().threshold_override
    failed = 0
    with _open_library(args) as library:
        if library.count() == 0:
            print("fpgui: warning: the library is empty; nothing can match", file=sys.stderr)
        _warn_not_fingerprinted(library)
        for found in scan_image_files(args.paths, lambda: False):
            if isinstance(found, ScanFailure):
                query, error = found.path, found.reason
            else:
                query, error = found, None
                try:
                    result = check(library, query, args.top_k, threshold=threshold)
                except ImageLoadError as exc:
                    error = exc.reason
            if error is not None:
                failed += 1
                if args.json:
                    print(json.dumps(error_json_dict(query, error)), flush=True)
                else:
                    print(f"{query}: error: {error}", flush=True)
                continue
            if args.json:
                print(json.dumps(result.to_json_dict()), flush=True)
            else:
                _print_check(result)
    return EXIT_FAILED if failed else EXIT_OK


def _print_check(result: object) -> None:
    from fpgui.core.matching import CheckResult
    from fpgui.core.verdict import Verdict

    assert isinstance(result, CheckResult)
    nearest = result.nearest
    if nearest is None:
        print(f"{result.query}: not a copy (the library is empty)")
        return
    if result.verdict is Verdict.COPY:
        verdict = f"COPY of {nearest.path}"
    elif result.verdict is Verdict.POSSIBLE:
        verdict = f"POSSIBLE COPY of {nearest.path} - compare to confirm"
    else:
        verdict = "not a copy"
    print(f"{result.query}: {verdict}: {result.evidence_text(digits=4)}")
    for match in result.matches:
        print(f"  {match.rank}. {match.distance:.4f}  {match.path}")


def _cmd_list(args: argparse.Namespace) -> int:
    from fpgui.core.library import Library

    with Library.open(_library_dir(args), create=False) as library:
        for image in library.images():
            if args.json:
                print(json.dumps({
                    "path": image.path, "sha256": image.sha256, "size": image.size,
                    "width": image.width, "height": image.height,
                    "added_at": image.added_at.isoformat(), "missing": image.missing,
                    "duplicates": list(image.duplicate_paths),
                }))  # fmt: skip
                continue
            flag = "  MISSING" if image.missing else ""
            print(
                f"{image.path}\t{image.width}x{image.height}\t{image.sha256[:12]}\t"
                f"{image.added_at:%Y-%m-%d %H:%M}{flag}"
            )
            for duplicate in image.duplicate_paths:
                print(f"  = {duplicate}")
    return EXIT_OK


def _cmd_remove(args: argparse.Namespace) -> int:
    with _open_library(args) as library:
        result = library.remove(args.paths)
    for path in result.removed:
        print(f"removed: {path}")
    for path in result.not_found:
        print(f"fpgui: not in the library: {path}", file=sys.stderr)
    print(f"{len(result.removed)} removed")
    return EXIT_FAILED if result.not_found else EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    with _open_library(args) as library:
        line = _ProgressLine(sys.stderr, "repairing")
        try:
            report = library.verify(repair=args.repair, progress=line.update)
        finally:
            line.finish()
    print(f"{report.images} images, {report.index_entries} in the index, model {report.model_id}")
    for action in report.repairs:
        print(f"repaired: {action}")
    for path, reason in report.unrepaired:
        print(f"not repaired: {path}: {reason}")
    for problem in report.problems():
        print(f"problem: {problem}")
    for path in report.missing_files[:20]:
        print(f"  missing: {path}")
    if len(report.missing_files) > 20:
        print(f"  ... and {len(report.missing_files) - 20} more")
    if report.ok:
        print("ok: catalogue, index, model and files agree")
        return EXIT_OK
    if not args.repair:
        print("run `fpgui verify --repair` to fix what can be fixed")
    return EXIT_FAILED


def _cmd_info(args: argparse.Namespace) -> int:
    with _open_library(args) as library:
        info = library.info()
    rows = [
        ("library", str(info.folder)),
        ("model", info.model_id or "-"),
        ("device", info.device or "-"),
        ("precision", info.precision or "-"),
        ("images", str(info.images)),
        ("duplicate paths", str(info.duplicate_paths)),
        ("fingerprinted", str(info.fingerprinted)),
        ("need re-embedding", str(info.needs_reembed)),
        ("library model", info.library_model_id or "-"),
        ("index size", _human_bytes(info.index_bytes)),
        ("catalogue size", _human_bytes(info.catalogue_bytes)),
    ]
    for key, value in rows:
        print(f"{key + ':':<19}{value}")
    return EXIT_OK


def _run_gui(args: argparse.Namespace) -> int:
    try:
        from fpgui.ui.app import run_gui  # Qt loads only for the GUI
    except ImportError as exc:
        print(f"fpgui: error: the desktop application cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    device = getattr(args, "device", None)
    result: int = run_gui(_library_dir(args), device)
    return result


def _warn_not_fingerprinted(library: Library) -> None:
    missing = library.needs_reembed()
    if missing:
        print(
            f"fpgui: warning: {missing} library images were fingerprinted with another model and "
            "are not compared; run `fpgui verify --repair` to re-embed them",
            file=sys.stderr,
        )


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
