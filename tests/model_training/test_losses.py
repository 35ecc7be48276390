"""Each vectorised loss against a plain loop over explicit triplets (pytorch-metric-learning
style), plus the edge cases training meets: one label, singleton labels, collapsed embeddings."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from model_training.losses import (
    batch_hard_triplet_loss,
    batch_semi_hard_triplet_loss,
    contrastive_infonce_loss,
    entropy_regularizer,
    lossless_triplet_loss,
    pairwise_distances,
    triplet_loss,
    weighted_triplet_loss,
)

BatchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def dist(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))


def batch(
    seed: int, n: int = 12, d: int = 8, classes: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, d, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return embeddings, labels


def triplets(seed: int, n: int = 10, d: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a, p, n_ = (torch.randn(n, d, generator=generator, dtype=torch.float64) for _ in range(3))
    return a, a + 0.5 * p, n_


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_distances_match_a_loop(seed: int) -> None:
    embeddings, _ = batch(seed)
    distances = pairwise_distances(embeddings)
    for i in range(len(embeddings)):
        for j in range(len(embeddings)):
            expected = dist(embeddings[i], embeddings[j])
            assert float(distances[i, j]) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("margin", [0.0, 0.2, 1.0])
def test_triplet_and_weighted_match_a_loop(seed: int, margin: float) -> None:
    a, p, n = triplets(seed)
    for theta in (1.0, 0.9, 0.5):
        expected = sum(
            max(0.0, dist(a[i], p[i]) - theta * dist(a[i], n[i]) + margin) for i in range(len(a))
        ) / len(a)
        got = weighted_triplet_loss(a, p, n, margin=margin, theta=theta)
        assert float(got) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    plain = sum(max(0.0, dist(a[i], p[i]) - dist(a[i], n[i]) + margin) for i in range(len(a)))
    assert float(triplet_loss(a, p, n, margin=margin)) == pytest.approx(plain / len(a))


def test_weighted_variant_keeps_a_gradient_after_the_margin_is_met() -> None:
    a = torch.zeros(1, 2)
    p = torch.tensor([[0.1, 0.0]])
    n = torch.tensor([[0.5, 0.0]], requires_grad=True)
    assert triplet_loss(a, p, n, margin=0.2).item() == 0.0
    loss = weighted_triplet_loss(a, p, n, margin=0.2, theta=0.5)
    loss.backward()
    assert loss.item() > 0 and n.grad is not None and float(n.grad.abs().sum()) > 0


@pytest.mark.parametrize("seed", range(5))
def test_lossless_matches_the_formula(seed: int) -> None:
    a, p, n = triplets(seed)
    d = a.shape[1]
    total = 0.0
    for i in range(len(a)):
        sa, sp, sn = (1 / (1 + torch.exp(-t[i])) for t in (a, p, n))
        pos = sum((float(x) - float(y)) ** 2 for x, y in zip(sa, sp, strict=True))
        neg = sum((float(x) - float(y)) ** 2 for x, y in zip(sa, sn, strict=True))
        total += -math.log(-pos / d + 1 + 1e-8) - math.log(-(d - neg) / d + 1 + 1e-8)
    got = lossless_triplet_loss(a, p, n, dim=d)
    assert float(got) == pytest.approx(total / len(a), rel=1e-9)
    assert float(lossless_triplet_loss(a, p, n)) == pytest.approx(float(got))


def test_lossless_is_zero_at_the_ideal_and_grows_towards_the_bad_extremes() -> None:
    big = 30.0
    a = torch.full((1, 4), big)
    ideal = lossless_triplet_loss(a, a.clone(), -a, dim=4)
    assert float(ideal) == pytest.approx(0.0, abs=1e-6)
    worst = lossless_triplet_loss(a, -a, a.clone(), dim=4)
    assert float(worst) > 20  # each term tends to -ln(eps) ~ 18.4


def loop_batch_hard(
    e: torch.Tensor, labels: torch.Tensor, margin: float, theta: float, soft: bool
) -> float | None:
    values = []
    for a in range(len(e)):
        pos = [dist(e[a], e[p]) for p in range(len(e)) if p != a and labels[p] == labels[a]]
        neg = [dist(e[a], e[n]) for n in range(len(e)) if labels[n] != labels[a]]
        if not pos or not neg:
            continue
        gap = max(pos) - theta * min(neg)
        values.append(math.log1p(math.exp(gap)) if soft else max(0.0, gap + margin))
    return sum(values) / len(values) if values else None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("theta", "soft"), [(1.0, False), (0.8, False), (1.0, True)])
def test_batch_hard_matches_a_loop(seed: int, theta: float, soft: bool) -> None:
    e, labels = batch(seed)
    expected = loop_batch_hard(e, labels, 0.3, theta, soft)
    got = batch_hard_triplet_loss(e, labels, margin=0.3, theta=theta, soft=soft)
    assert float(got) == pytest.approx(expected if expected is not None else 0.0, rel=1e-6)


def loop_semi_hard(e: torch.Tensor, labels: torch.Tensor, margin: float) -> float | None:
    values = []
    for a in range(len(e)):
        negatives = [dist(e[a], e[n]) for n in range(len(e)) if labels[n] != labels[a]]
        if not negatives:
            continue
        for p in range(len(e)):
            if p == a or labels[p] != labels[a]:
                continue
            d_ap = dist(e[a], e[p])
            farther = [d for d in negatives if d > d_ap]
            d_an = min(farther) if farther else min(negatives)
            values.append(max(0.0, d_ap - d_an + margin))
    return sum(values) / len(values) if values else None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
def test_batch_semi_hard_matches_a_loop(seed: int, margin: float) -> None:
    e, labels = batch(seed)
    expected = loop_semi_hard(e, labels, margin)
    got = batch_semi_hard_triplet_loss(e, labels, margin=margin)
    assert float(got) == pytest.approx(expected if expected is not None else 0.0, rel=1e-6)


def test_semi_hard_falls_back_to_the_hardest_negative() -> None:
    # the only negatives are nearer than the positive: semi-hard has none, hardest is 0.5 away
    e = torch.tensor([[0.0], [2.0], [0.5], [1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    loss = batch_semi_hard_triplet_loss(e[:3], labels[:3], margin=0.1)
    # pairs (0,1): d_ap 2, negatives {0.5} -> 2 - 0.5 + 0.1; (1,0): d_ap 2, negatives {1.5}
    assert float(loss) == pytest.approx(((2 - 0.5 + 0.1) + (2 - 1.5 + 0.1)) / 2)


def loop_infonce(e: torch.Tensor, labels: torch.Tensor, temperature: float) -> float | None:
    unit = [row / math.sqrt(float((row * row).sum())) for row in e]

    def s(i: int, j: int) -> float:
        return float((unit[i] * unit[j]).sum()) / temperature

    values = []
    for i in range(len(e)):
        positives = [p for p in range(len(e)) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        log_denominator = math.log(sum(math.exp(s(i, k)) for k in range(len(e)) if k != i))
        values.append(-sum(s(i, p) - log_denominator for p in positives) / len(positives))
    return sum(values) / len(values) if values else None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0])
def test_infonce_matches_a_loop(seed: int, temperature: float) -> None:
    e, labels = batch(seed)
    expected = loop_infonce(e, labels, temperature)
    got = contrastive_infonce_loss(e, labels, temperature=temperature)
    assert float(got) == pytest.approx(expected if expected is not None else 0.0, rel=1e-6)


BATCH_LOSSES: dict[str, BatchLoss] = {
    "hard": lambda e, y: batch_hard_triplet_loss(e, y, margin=0.2),
    "hard_weighted": lambda e, y: batch_hard_triplet_loss(e, y, margin=0.2, theta=0.9),
    "hard_soft": lambda e, y: batch_hard_triplet_loss(e, y, soft=True),
    "semi_hard": lambda e, y: batch_semi_hard_triplet_loss(e, y, margin=0.2),
    "infonce": lambda e, y: contrastive_infonce_loss(e, y, temperature=0.1),
}


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_all_same_label_gives_a_zero_that_backpropagates(name: str) -> None:
    e = torch.randn(6, 4, requires_grad=True)
    loss = BATCH_LOSSES[name](e, torch.zeros(6, dtype=torch.long))
    if name == "infonce":  # every other sample is a positive; no negatives needed
        assert torch.isfinite(loss)
    else:
        assert loss.item() == 0.0
    loss.backward()
    assert e.grad is not None and torch.isfinite(e.grad).all()


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_singleton_labels_are_skipped_as_anchors(name: str) -> None:
    e, _ = batch(7, n=7)
    labels = torch.tensor([0, 0, 1, 1, 2, 3, 4])  # 2, 3, 4 have no positive
    full = BATCH_LOSSES[name](e, labels)
    all_unique = BATCH_LOSSES[name](e, torch.arange(7))
    assert torch.isfinite(full) and float(all_unique) == 0.0
    if name.startswith("hard"):
        theta = 0.9 if name == "hard_weighted" else 1.0
        expected = loop_batch_hard(e, labels, 0.2, theta, name == "hard_soft")
        assert float(full) == pytest.approx(expected)


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_identical_embeddings_give_finite_gradients(name: str) -> None:
    e = torch.ones(8, 16, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = BATCH_LOSSES[name](e, labels)
    loss.backward()
    assert torch.isfinite(loss) and e.grad is not None and torch.isfinite(e.grad).all()


@pytest.mark.parametrize(
    "loss_fn",
    [
        lambda a, p, n: triplet_loss(a, p, n),
        lambda a, p, n: weighted_triplet_loss(a, p, n, theta=0.9),
        lambda a, p, n: lossless_triplet_loss(a, p, n, dim=16),
    ],
)
def test_triplet_losses_survive_collapsed_embeddings(
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    a = torch.ones(4, 16, requires_grad=True)
    loss = loss_fn(a, a, a)
    loss.backward()
    assert torch.isfinite(loss) and a.grad is not None and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_gradient_descent_separates_the_classes(name: str) -> None:
    e, labels = batch(3, n=16, d=8, classes=4)
    e = e.float().requires_grad_(True)
    optimiser = torch.optim.SGD([e], lr=0.1)
    first = BATCH_LOSSES[name](e, labels).item()
    for _ in range(50):
        optimiser.zero_grad()
        loss = BATCH_LOSSES[name](e, labels)
        loss.backward()
        assert e.grad is not None and torch.isfinite(e.grad).all()
        optimiser.step()
    assert BATCH_LOSSES[name](e, labels).item() < first


def loop_entropy(e: torch.Tensor, labels: torch.Tensor) -> float | None:
    values = []
    for i in range(len(e)):
        others = [dist(e[i], e[j]) for j in range(len(e)) if labels[j] != labels[i]]
        if others:
            values.append(-math.log(min(others) + 1e-8))
    return sum(values) / len(values) if values else None


@pytest.mark.parametrize("seed", range(6))
def test_entropy_regularizer_matches_a_loop(seed: int) -> None:
    e, labels = batch(seed)
    expected = loop_entropy(e, labels)
    assert expected is not None
    assert float(entropy_regularizer(e, labels)) == pytest.approx(expected, rel=1e-6)


def test_entropy_regularizer_ignores_same_label_neighbours() -> None:
    # Two copies of one image sit together; only the distance to the other image counts.
    e = torch.tensor([[0.0, 0.0], [0.0, 0.01], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    expected = -(math.log(3.0) + math.log(math.hypot(3.0, 0.01)) + math.log(3.0)) / 3
    assert float(entropy_regularizer(e, labels)) == pytest.approx(expected, rel=1e-5)


def test_entropy_regularizer_pushes_the_nearest_other_image_away() -> None:
    e = torch.tensor([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]], requires_grad=True)
    entropy_regularizer(e, torch.tensor([0, 1, 2])).backward()
    assert e.grad is not None
    # Descending the gradient moves 0 and 1 (each other's nearest) apart.
    assert float(e.grad[0, 0]) > 0 > float(e.grad[1, 0])


def test_entropy_regularizer_of_one_label_is_a_zero_that_backpropagates() -> None:
    e = torch.randn(5, 4, requires_grad=True)
    loss = entropy_regularizer(e, torch.zeros(5, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and e.grad is not None
