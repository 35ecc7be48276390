"""Metric-learning losses for the fingerprint network, vectorised over a batch.

Embeddings are ``(N, D)`` float tensors; distances are Euclidean (L2), taken through a safe square
root (squared distance clamped at 1e-12) so that identical embeddings give finite gradients. Every
loss returns a scalar (0-dim) tensor, the mean over the triplets or anchors it uses; when a batch
offers none (say, one label only) the loss is a zero that still belongs to the graph, so
``backward()`` works and changes nothing.

Triplet inputs (``triplet_loss``, ``weighted_triplet_loss``, ``lossless_triplet_loss``) are three
aligned ``(N, D)`` tensors. Batch losses (``batch_hard_triplet_loss``,
``batch_semi_hard_triplet_loss``, ``contrastive_infonce_loss``) take ``(N, D)`` embeddings and
``(N,)`` integer labels, where equal labels mean "copies of the same original".
"""

from __future__ import annotations

import torch
from torch.nn import functional

SQRT_EPS = 1e-12


def _safe_sqrt(squared: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(squared.clamp_min(SQRT_EPS))


def paired_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 distance of ``(N, D)`` ``a`` and ``b``: ``(N,)``."""
    return _safe_sqrt((a - b).pow(2).sum(dim=1))


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """All L2 distances within ``(N, D)`` embeddings: ``(N, N)``, diagonal ~1e-6 (safe sqrt)."""
    squared_norms = embeddings.pow(2).sum(dim=1)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * embeddings @ embeddings.T
    return _safe_sqrt(squared)


def _mean_or_zero(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Mean of ``values``; a graph-connected zero when there are none."""
    if values.numel() == 0:
        return like.sum() * 0.0
    return values.mean()


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """``mean(max(0, d(a, p) - d(a, n) + margin))`` over ``(N, D)`` aligned triplets."""
    return weighted_triplet_loss(anchor, positive, negative, margin=margin, theta=1.0)


def weighted_triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 0.2,
    theta: float = 0.9,
) -> torch.Tensor:
    """``mean(max(0, d(a, p) - theta * d(a, n) + margin))`` over ``(N, D)`` aligned triplets.

    The published weighted variant: with ``theta < 1`` a triplet that just meets the margin still
    has a positive loss, so it keeps pushing the negative away.
    """
    d_ap = paired_distances(anchor, positive)
    d_an = paired_distances(anchor, negative)
    return functional.relu(d_ap - theta * d_an + margin).mean()


def lossless_triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    dim: int | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Arsenault's "lossless triplet loss" over ``(N, D)`` aligned triplets.

    Each embedding goes through a sigmoid, so coordinates lie in (0, 1) and squared distances in
    [0, dim]. With ``pos = |s(a) - s(p)|^2``, ``neg = |s(a) - s(n)|^2`` and ``beta = dim``::

        loss = mean(-ln(-pos / beta + 1 + eps) - ln(-(dim - neg) / beta + 1 + eps))

    Both terms are 0 when ``pos = 0`` and ``neg = dim`` and grow without bound (to -ln(eps)) as
    ``pos -> dim`` or ``neg -> 0``, so there is no margin at which the loss stops teaching.
    ``dim`` defaults to ``D``. With an L2-normalised network the sigmoid inputs are small, so
    ``neg`` stays far below ``dim``; the loss then never reaches 0 but its gradient stays useful.
    """
    size = anchor.shape[1] if dim is None else dim
    beta = float(size)
    s_a, s_p, s_n = torch.sigmoid(anchor), torch.sigmoid(positive), torch.sigmoid(negative)
    pos = (s_a - s_p).pow(2).sum(dim=1)
    neg = (s_a - s_n).pow(2).sum(dim=1)
    pos_term = -torch.log(-pos / beta + 1.0 + eps)
    neg_term = -torch.log(-(size - neg) / beta + 1.0 + eps)
    return (pos_term + neg_term).mean()


def _label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, N)`` bool masks: positives (same label, not self) and negatives (other label)."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.2,
    theta: float = 1.0,
    soft: bool = False,
) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017) over ``(N, D)`` embeddings, ``(N,)`` labels.

    Each anchor takes its farthest positive and nearest negative in the batch:
    ``max(0, d_ap - theta * d_an + margin)``, or ``softplus(d_ap - theta * d_an)`` when ``soft``
    (the margin is then unused). Anchors without a positive or without a negative are skipped;
    the mean is over the rest.
    """
    distances = pairwise_distances(embeddings)
    positives, negatives = _label_masks(labels)
    infinity = torch.finfo(distances.dtype).max
    hardest_positive = distances.masked_fill(~positives, 0.0).max(dim=1).values
    hardest_negative = distances.masked_fill(~negatives, infinity).min(dim=1).values
    usable = positives.any(dim=1) & negatives.any(dim=1)
    gap = hardest_positive[usable] - theta * hardest_negative[usable]
    values = functional.softplus(gap) if soft else functional.relu(gap + margin)
    return _mean_or_zero(values, embeddings)


def batch_semi_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """FaceNet semi-hard triplet loss over ``(N, D)`` embeddings and ``(N,)`` labels.

    Every (anchor, positive) pair takes the nearest negative farther than the positive
    (``d_an > d_ap``); when there is none it falls back to the hardest (nearest) negative. (TF
    Addons falls back to the farthest instead.) Loss ``max(0, d_ap - d_an + margin)``, mean over
    pairs whose anchor has a negative. Memory is ``(P, N)`` for ``P`` positive pairs.
    """
    distances = pairwise_distances(embeddings)
    positives, negatives = _label_masks(labels)
    anchor_index, positive_index = positives.nonzero(as_tuple=True)
    d_ap = distances[anchor_index, positive_index]  # (P,)
    d_an = distances[anchor_index]  # (P, N)
    negative = negatives[anchor_index]  # (P, N)
    infinity = torch.finfo(distances.dtype).max
    semi_hard = negative & (d_an > d_ap[:, None])
    nearest_semi_hard = d_an.masked_fill(~semi_hard, infinity).min(dim=1).values
    hardest = d_an.masked_fill(~negative, infinity).min(dim=1).values
    chosen = torch.where(semi_hard.any(dim=1), nearest_semi_hard, hardest)
    usable = negative.any(dim=1)
    values = functional.relu(d_ap[usable] - chosen[usable] + margin)
    return _mean_or_zero(values, embeddings)


def contrastive_infonce_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """Supervised InfoNCE (SupCon "out" form; NT-Xent with one positive per anchor).

    ``(N, D)`` embeddings are L2-normalised; ``s_ij = cos(e_i, e_j) / temperature`` (for unit
    vectors ``d_ij^2 = 2 - 2 cos``, so this ranks by L2 distance too). For each anchor ``i`` with
    positives ``P(i)``::

        loss_i = -mean_{p in P(i)} [ s_ip - logsumexp_{k != i} s_ik ]

    Every other sample in the batch is a negative, so one step sees many. Anchors without a
    positive are skipped; the mean is over the rest.
    """
    unit = functional.normalize(embeddings, p=2.0, dim=1)
    logits = unit @ unit.T / temperature
    positives, _ = _label_masks(labels)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    log_prob = logits - torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    counts = positives.sum(dim=1)
    usable = counts > 0
    per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(dim=1)[usable] / counts[usable])
    return _mean_or_zero(per_anchor, embeddings)


def entropy_regularizer(
    embeddings: torch.Tensor, labels: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """Kozachenko-Leonenko entropy term (Sablayrolles et al. 2018), as SSCD uses it.

    For each of the ``(N, D)`` embeddings, ``-log(d_nn + eps)`` where ``d_nn`` is the L2 distance
    to its nearest neighbour with another ``(N,)`` label; the mean over embeddings that have one.
    Minimising it spreads unrelated images apart evenly, so one global distance threshold
    separates copies from non-copies across the whole library (what the copy verdict needs).
    """
    distances = pairwise_distances(embeddings)
    _, negatives = _label_masks(labels)
    infinity = torch.finfo(distances.dtype).max
    nearest = distances.masked_fill(~negatives, infinity).min(dim=1).values
    usable = negatives.any(dim=1)
    return _mean_or_zero(-torch.log(nearest[usable] + eps), embeddings)
