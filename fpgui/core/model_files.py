"""The model bundle on disk: ``weights.pt`` (fp16 state dict) beside ``model.json`` (metadata).

Loading checks the weights' SHA-256 against the metadata and loads with ``weights_only=True``;
anything missing, corrupt or mismatched raises one :class:`ModelLoadError` that says which file
and what is wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fpgui.core.architecture import ARCHITECTURE_NAME, FingerprintNet
from fpgui.core.atomic import atomic_write_bytes
from fpgui.core.errors import ModelLoadError
from fpgui.core.verdict import VerdictPolicy, VerdictRule

METADATA_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"
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


def save_model_bundle(
    network: FingerprintNet, meta: ModelMetadata, model_dir: Path
) -> ModelMetadata:
    """Write fp16 weights and metadata atomically; returns the metadata with the weights' sha256."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
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
