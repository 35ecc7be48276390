"""``python -m model_training COMMAND``: corpus, train, evaluate, export, reproduce, compare.

Each command module owns its arguments through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("corpus", "train", "evaluate", "export", "reproduce", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_training", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"model_training.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"model_training.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
