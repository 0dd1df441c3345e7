"""Temporal stabilisation as pure functions of frames: cuts found in gray shots made from dev
photos, flicker lowered within a shot, no colour dragged across a cut."""

from __future__ import annotations

import clips
import numpy as np
import pytest
from conftest import dev_photos
from PIL import Image

from colorize_cli.imaging import color
from colorize_cli.inference import temporal

W, H, N = 96, 64, 10


@pytest.fixture(scope="module")
def shots() -> tuple[list[np.ndarray], list[bool]]:
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in dev_photos(3)]
    return clips.clip(photos, W, H, N)


def truth_ab(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [color.srgb_to_lab(frame)[..., 1:] for frame in frames]


def noisy(abs_: list[np.ndarray], sigma: float, seed: int = 0) -> list[np.ndarray]:
    """Predictions that flicker: the truth plus a fresh colour cast and pixel noise per frame."""
    rng = np.random.default_rng(seed)
    return [
        (ab + rng.normal(0, sigma, 2) + rng.normal(0, sigma / 2, ab.shape)).astype(np.float32)
        for ab in abs_
    ]


def test_cuts_are_found_between_shots_and_nowhere_else(shots) -> None:
    frames, cuts = shots
    assert temporal.find_cuts(clips.gray_frames(frames)) == cuts
    assert sum(cuts) == 3


def test_flicker_leaves_out_pairs_across_cuts() -> None:
    a, b = np.zeros((4, 4, 2), np.float32), np.full((4, 4, 2), 3.0, np.float32)
    assert temporal.flicker([a, a, b, b], [True, False, True, False]) == 0.0
    assert temporal.flicker([a, b], [True, False]) == pytest.approx(np.hypot(3, 3))


def test_stabilizer_lowers_flicker_towards_the_truths_own(shots) -> None:
    frames, cuts = shots
    grays, truth = clips.gray_frames(frames), truth_ab(frames)
    predicted = noisy(truth, sigma=4.0)
    stabilized = temporal.stabilize(grays, predicted)
    own = temporal.flicker(truth, cuts)
    before, after = temporal.flicker(predicted, cuts), temporal.flicker(stabilized, cuts)
    assert after < 0.6 * before
    assert after > own * 0.5  # it smooths the noise, not the motion away

    def error(abs_: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(p - t).mean() for p, t in zip(abs_, truth, strict=True)]))

    assert error(stabilized) < error(predicted)


def test_a_cut_restarts_the_average_so_no_colour_crosses_it(shots) -> None:
    frames, cuts = shots
    grays, predicted = clips.gray_frames(frames), noisy(truth_ab(frames), 4.0)
    stabilized = temporal.stabilize(grays, predicted)
    for i, cut in enumerate(cuts):
        if cut:
            np.testing.assert_array_equal(stabilized[i], predicted[i])
        else:
            assert not np.array_equal(stabilized[i], predicted[i])


def test_motion_takes_the_new_prediction() -> None:
    """Where the gray changes a lot, the new colour is used as it is (no ghost of the old)."""
    gray = np.full((32, 32), 100, np.uint8)
    moved = gray.copy()
    moved[8:12, 8:24] = 200  # something small passes: motion, not a cut
    ab_old, ab_new = np.zeros((32, 32, 2), np.float32), np.full((32, 32, 2), 10.0, np.float32)
    stabilizer = temporal.Stabilizer()
    stabilizer(gray, ab_old)
    out = stabilizer(moved, ab_new)
    assert stabilizer.cuts == 0
    np.testing.assert_allclose(out[9:11, 10:22], 10.0)
    np.testing.assert_allclose(out[16:], 10.0 * temporal.STRENGTH)


def test_stabilizer_checks_its_settings_and_shapes() -> None:
    with pytest.raises(ValueError):
        temporal.Stabilizer(strength=0)
    with pytest.raises(ValueError):
        temporal.Stabilizer()(np.zeros((4, 4), np.uint8), np.zeros((4, 5, 2), np.float32))


def test_the_network_runs_on_every_nth_frame_and_at_each_cut(shots) -> None:
    """`network_groups` on a clip of three 10-frame shots: every 4th frame of a shot and each
    cut's first reach the network, the frames between follow it in order; every 1: all alone."""
    frames, cuts = shots
    grays = clips.gray_frames(frames)
    assert [i for i, cut in enumerate(cuts) if cut] == [0, 10, 20]
    items = [(i, gray, f"guide {i}") for i, gray in enumerate(grays)]
    groups = list(temporal.network_groups(items, 4))
    leads = [lead for (lead, _), _, _ in groups]
    assert leads == [0, 4, 8, 10, 14, 18, 20, 24, 28]
    for (lead, followers), upright, guide in groups:
        assert upright is grays[lead] and guide == f"guide {lead}"
        assert followers == list(range(lead + 1, lead + 1 + len(followers)))
    assert sorted(t for (lead, fs), _, _ in groups for t in [lead, *fs]) == list(range(len(grays)))
    alone = list(temporal.network_groups(items, 1))
    assert [lead for (lead, followers), _, _ in alone] == list(range(len(grays)))
    assert all(not followers for (_, followers), _, _ in alone)
