"""The model bundle on disk: ``weights.pt`` (fp16 state dict) beside ``model.json`` (metadata),
and optionally ``background.npy`` (fp16 fingerprints of unrelated images, see
:mod:`fpgui.core.crowding`).

Loading checks each file's SHA-256 against the metadata and loads weights with
``weights_only=True`` (the background with ``allow_pickle=False``); anything missing, corrupt or
mismatched raises one :class:`ModelLoadError` that says which file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fpgui.core.architecture import ARCHITECTURE_NAME, FingerprintNet
from fpgui.core.atomic import atomic_write_bytes
from fpgui.core.crowding import Crowding
from fpgui.core.errors import ModelLoadError
from fpgui.core.verdict import VerdictPolicy, VerdictRule

METADATA_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"
BACKGROUND_FILE = "background.npy"
METADATA_FORMAT = 1
NORMALIZATIONS: tuple[str, ...] = ("fixed", "per_image")


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the app needs to use a model without importing training code."""

    name: str
    version: str
    architecture: str = ARCHITECTURE_NAME
    input_size: int = 128
    colour_mode: str = "L"
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    # "fixed": (x - mean) / std. "per_image": each image to zero mean, unit std (after the
    # fixed step), so brightness and contrast changes reach the network much reduced.
    normalization: str = "fixed"
    embedding_dim: int = 128
    l2_normalize: bool = True
    distance: str = "l2"
    threshold: float = 0.5
    # The verdict's other calibrated values (see core/verdict.py); 0 means "not calibrated".
    ratio_threshold: float = 0.0
    reference_distance: float = 0.0
    possible_threshold: float = 0.0
    possible_ratio_threshold: float = 0.0
    weights_file: str = WEIGHTS_FILE
    weights_sha256: str = ""
    # The crowding correction (see core/crowding.py); "" / 0 turn it off.
    crowding_file: str = ""
    crowding_sha256: str = ""
    crowding_k: int = 0
    crowding_reference: float = 0.0
    crowding_radius: float = 0.0
    created: str = ""
    code_version: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format: int = METADATA_FORMAT

    @property
    def model_id(self) -> str:
        """Short, stable identity: name, version and the first 12 hex digits of the weights."""
        return f"{self.name}-{self.version}-{self.weights_sha256[:12]}"

    def verdict_policy(self, threshold: float | None = None) -> VerdictPolicy:
        """The copy/possible/no-match rules; ``threshold`` overrides the strict distance."""
        strict = VerdictRule(
            self.threshold if threshold is None else float(threshold),
            self.ratio_threshold,
            self.reference_distance,
        )
        balanced = None
        if self.possible_threshold > 0 or self.possible_ratio_threshold > 0:
            balanced = VerdictRule(
                max(self.possible_threshold, strict.threshold),
                max(self.possible_ratio_threshold, self.ratio_threshold),
                self.reference_distance,
            )
        return VerdictPolicy(strict, balanced)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMetadata:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(x) for x in values[key])
        return cls(**values)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_metadata(model_dir: Path) -> ModelMetadata:
    """Parse ``model.json`` in ``model_dir``; raises ModelLoadError naming the file."""
    meta_path = model_dir / METADATA_FILE
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"No model metadata at {meta_path}") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Model metadata {meta_path} is unreadable: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f"Model metadata {meta_path} is not a JSON object")
    try:
        meta = ModelMetadata.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"Model metadata {meta_path} is invalid: {exc}") from exc
    if meta.architecture != ARCHITECTURE_NAME:
        raise ModelLoadError(
            f"{meta_path} describes a '{meta.architecture}' model; this fpgui runs "
            f"'{ARCHITECTURE_NAME}'"
        )
    if meta.normalization not in NORMALIZATIONS:
        raise ModelLoadError(
            f"{meta_path} asks for normalization '{meta.normalization}'; this fpgui knows "
            f"{', '.join(NORMALIZATIONS)}"
        )
    if meta.format > METADATA_FORMAT:
        raise ModelLoadError(f"{meta_path} has format {meta.format}; update fpgui to read it")
    return meta


def build_network(meta: ModelMetadata) -> FingerprintNet:
    return FingerprintNet(
        embedding_dim=meta.embedding_dim,
        in_channels=len(meta.mean),
        l2_normalize=meta.l2_normalize,
    )


def load_model_bundle(model_dir: Path) -> tuple[FingerprintNet, ModelMetadata]:
    """Load weights and metadata from ``model_dir``; the network is returned in eval mode, fp32."""
    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    weights_path = model_dir / meta.weights_file
    if not weights_path.is_file():
        raise ModelLoadError(f"Model weights {weights_path} are missing")
    actual_sha = sha256_file(weights_path)
    if meta.weights_sha256 and actual_sha != meta.weights_sha256:
        raise ModelLoadError(
            f"Model weights {weights_path} do not match {METADATA_FILE} "
            f"(sha256 {actual_sha[:12]}..., expected {meta.weights_sha256[:12]}...)"
        )
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many unrelated types for a bad file
        raise ModelLoadError(f"Model weights {weights_path} cannot be read: {exc}") from exc
    if not isinstance(state, dict):
        raise ModelLoadError(f"Model weights {weights_path} are not a state dict")
    network = build_network(meta)
    try:
        network.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, AttributeError) as exc:
        raise ModelLoadError(
            f"Model weights {weights_path} do not fit the {meta.architecture} "
            f"architecture: {str(exc).splitlines()[0]}"
        ) from exc
    network.eval()
    return network, dataclasses.replace(meta, weights_sha256=actual_sha)


def load_crowding(model_dir: Path, meta: ModelMetadata) -> Crowding | None:
    """The bundle's crowding correction; None when the model has none."""
    if not meta.crowding_file or meta.crowding_k <= 0:
        return None
    path = Path(model_dir) / meta.crowding_file
    if not path.is_file():
        raise ModelLoadError(f"Model background fingerprints {path} are missing")
    if meta.crowding_sha256 and sha256_file(path) != meta.crowding_sha256:
        raise ModelLoadError(f"Model background fingerprints {path} do not match {METADATA_FILE}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Model background fingerprints {path} cannot be read: {exc}") from exc
    if array.ndim != 2 or array.shape[1] != meta.embedding_dim or not np.isfinite(array).all():
        raise ModelLoadError(
            f"Model background fingerprints {path} have shape {array.shape}; expected "
            f"(N, {meta.embedding_dim}) finite values"
        )
    try:
        return Crowding(
            array.astype(np.float32), meta.crowding_k, meta.crowding_reference, meta.crowding_radius
        )
    except ValueError as exc:
        raise ModelLoadError(f"{Path(model_dir) / METADATA_FILE}: {exc}") from exc


def save_model_bundle(
    network: FingerprintNet,
    meta: ModelMetadata,
    model_dir: Path,
    background: np.ndarray | None = None,
) -> ModelMetadata:
    """Write fp16 weights, the ``background`` fingerprints (fp16, when given; ``meta``'s
    ``crowding_k``, ``crowding_reference`` and ``crowding_radius`` describe their use) and
    metadata atomically; returns the metadata with the files' sha256."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if background is not None:
        stream = io.BytesIO()
        np.save(stream, np.asarray(background, dtype=np.float16), allow_pickle=False)
        data = stream.getvalue()
        atomic_write_bytes(model_dir / BACKGROUND_FILE, data)
        meta = dataclasses.replace(
            meta, crowding_file=BACKGROUND_FILE, crowding_sha256=hashlib.sha256(data).hexdigest()
        )
    else:
        meta = dataclasses.replace(meta, crowding_file="", crowding_sha256="", crowding_k=0)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in network.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    final = dataclasses.replace(
        meta,
        weights_file=WEIGHTS_FILE,
        weights_sha256=hashlib.sha256(payload).hexdigest(),
        architecture=ARCHITECTURE_NAME,
        embedding_dim=network.embedding_dim,
        l2_normalize=network.l2_normalize,
    )
    atomic_write_bytes(model_dir / WEIGHTS_FILE, payload)
    atomic_write_bytes(model_dir / METADATA_FILE, final.to_json().encode("utf-8"))
    return final
