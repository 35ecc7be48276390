"""Errors the core raises. Each carries a message a user can act on."""

from __future__ import annotations

from pathlib import Path


class FpguiError(Exception):
    """Base of every error the core raises on purpose."""


class FpguiWarning(UserWarning):
    """Warnings of our own; the test suite turns them into errors."""


class ImageLoadError(FpguiError):
    """An image file could not be read or decoded; ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelLoadError(FpguiError):
    """The model files are missing, corrupt or do not match their metadata."""


class FingerprintIndexError(FpguiError):
    """The fingerprint index is unusable (wrong dimension, model, corrupt file)."""


class LibraryError(FpguiError):
    """The library on disk is inconsistent or cannot be written."""


class LibraryBusyError(LibraryError):
    """Another process holds the library's write lock."""
