"""Startup time of the desktop app: first window on screen, and the model ready behind it.

Starts ``python -m fpgui.ui.app`` (the window's own entry point, without the command line's
imports) on a fresh library in a temporary data dir, several times, and prints the seconds from
process start to the first paint of the window and to the model being loaded. Goal: the window
within 1.5 s. Run under a display (``xvfb-run -a``) or with ``QT_QPA_PLATFORM=offscreen``.

    .venv/bin/python benchmarks/startup.py [--runs 3] [--entry cli]

``--entry cli`` measures ``fpgui gui`` instead (includes whatever fpgui/cli.py imports first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile


def one_run(entry: str) -> tuple[float | None, float | None]:
    with tempfile.TemporaryDirectory(prefix="fpgui-startup-") as data:
        env = dict(os.environ, FPGUI_DATA_DIR=data, FPGUI_STARTUP_REPORT="1")
        env["FPGUI_EXIT_WHEN_READY"] = "1"
        env.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
        library = os.path.join(data, "library")
        if entry == "cli":
            command = [sys.executable, "-m", "fpgui", "gui", "--library", library]
        else:
            command = [sys.executable, "-m", "fpgui.ui.app", library]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        window = model = None
        for line in done.stdout.splitlines():
            if line.startswith("fpgui-startup: window "):
                window = float(line.split()[-1])
            elif line.startswith("fpgui-startup: model ") or line.startswith(
                "fpgui-startup: failed"
            ):
                model = float(line.split()[-1])
        if window is None:
            print(done.stdout, done.stderr, file=sys.stderr)
        return window, model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--entry", choices=("app", "cli"), default="app")
    args = parser.parse_args()
    windows: list[float] = []
    models: list[float] = []
    for number in range(args.runs):
        window, model = one_run(args.entry)
        print(f"run {number + 1}: window {window} s, model ready {model} s")
        if window is not None:
            windows.append(window)
        if model is not None:
            models.append(model)
    if windows:
        print(f"first window: median {statistics.median(windows):.2f} s (goal < 1.5 s)")
    if models:
        print(f"model ready:  median {statistics.median(models):.2f} s")
    return 0 if windows else 1


if __name__ == "__main__":
    sys.exit(main())
