"""Staged recipes (nogan) on the lite0 preset: which network learns in which stage, the frozen
encoder, resume across a stage boundary, the checkpoint rule, and the crop that fits the shards."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import dev_photos
from test_dataset import write_shard
from test_train import StopAt, settings, weights

from colorize_cli.nets import pretrained
from colorize_cli.nets.models import build_generator, model_config
from colorize_cli.nets.recipes import Stage, get_recipe
from colorize_cli.tf_setup import import_tf
from colorize_cli.training import run_dir, train
from colorize_cli.training.validation import selection_score

tf = import_tf()

# Four equal stages: with 2 steps an epoch and 4 epochs, each epoch is one stage.
QUARTERS = replace(
    get_recipe("nogan"),
    stages=tuple(replace(stage, fraction=0.25) for stage in get_recipe("nogan").stages),
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    photos = dev_photos(8)
    write_shard(folder / "set.h5", photos[:6], size=40)
    write_shard(folder / "set.val.h5", photos[6:], size=40, split="val")
    return folder / "set.h5"


def lite0_settings(shards: Path, out: Path, **changes) -> train.TrainConfig:
    lite0 = {"epochs": 4, "steps_per_epoch": 2, "batch_size": 2, "crop": None, "model": "lite0"}
    lite0 |= {"recipe": "nogan", "samples": 0, "keep_checkpoints": 5}
    return settings(shards, out, **(lite0 | changes))


def checkpoint_values(run: Path, step: int, network: str) -> list[np.ndarray]:
    reader = tf.train.load_checkpoint(str(run / "checkpoints" / f"ckpt-{step}"))
    names = sorted(
        (name for name in reader.get_variable_to_shape_map() if name.startswith(f"{network}/")),
        key=lambda name: int(name.split("/")[1]),
    )
    return [reader.get_tensor(name) for name in names if name.endswith("VARIABLE_VALUE")]


def same(a: list[np.ndarray], b: list[np.ndarray], which) -> bool:
    return all(np.array_equal(a[i], b[i]) for i in which)


def test_stage_starts_split_the_run_by_fractions() -> None:
    nogan = get_recipe("nogan")
    assert nogan.stage_starts(1000) == [0, 100, 750, 850]
    assert [nogan.stage_at(s, 1000) for s in (0, 99, 100, 749, 750, 850, 999)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
    ]
    assert get_recipe("pix2pix").stage_starts(10) == [0]
    with pytest.raises(Exception, match="sum to 1"):
        replace(nogan, stages=(Stage("half", 0.5),))


@pytest.mark.slow
def test_each_nogan_stage_trains_what_it_says(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train, "get_recipe", lambda name: QUARTERS)
    out = tmp_path / "run"
    result = train.train(lite0_settings(shards, out))
    assert result.step == 8 and train.default_crop(40, 32) == 32
    fresh = build_generator(model_config("lite0"))
    names = [v.path for v in fresh.variables]
    encoder = [i for i, n in enumerate(names) if n.startswith("lite0_") and "normalize" not in n]
    decoder = [i for i, n in enumerate(names) if not n.startswith("lite0_")]
    start = [np.asarray(v) for v in fresh.variables]
    g = {step: checkpoint_values(out, step, "generator") for step in (2, 4, 6, 8)}
    d = {step: checkpoint_values(out, step, "discriminator") for step in (2, 4, 6, 8)}
    # 1: the decoder learns, the ImageNet encoder (BatchNorm statistics included) stays put.
    assert same(g[2], start, encoder) and not same(g[2], start, decoder)
    # 2: the encoder learns too; the discriminator has not moved since stage 1.
    assert not same(g[4], g[2], encoder)
    assert same(d[4], d[2], range(len(d[2])))
    # 3: only the discriminator learns.
    assert same(g[6], g[4], range(len(g[4]))) and not same(d[6], d[4], range(len(d[4])))
    # 4: both learn, with the adversarial term.
    assert not same(g[8], g[6], decoder) and not same(d[8], d[6], range(len(d[6])))
    lines = run_dir.read_metrics(out)
    assert "loss_d" not in lines[0] and "loss_d" in lines[2] and lines[3]["loss_adv"] > 0
    assert "lite0_stem_conv" in pretrained.keras_weights()


@pytest.mark.slow
def test_a_stop_in_one_stage_resumes_exactly_into_the_next(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    frozen, _, _, adversarial = get_recipe("nogan").stages
    halves = replace(
        QUARTERS, stages=(replace(frozen, fraction=0.5), replace(adversarial, fraction=0.5))
    )
    monkeypatch.setattr(train, "get_recipe", lambda name: halves)
    straight = train.train(lite0_settings(shards, tmp_path / "a", epochs=2))
    with pytest.raises(train.TrainingInterrupted):
        train.train(lite0_settings(shards, tmp_path / "b", epochs=2), StopAt(1, signal.SIGINT))
    resumed = train.resume(tmp_path / "b")
    assert resumed.step == straight.step == 4
    for a, b in zip(weights(straight.generator), weights(resumed.generator), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_selection_rule_weighs_colour_error_against_colourfulness() -> None:
    # Gray itself scores 1.0; a model as accurate with the truth's colourfulness scores 0.75.
    assert selection_score(10.0, 10.0, 0.0) == pytest.approx(1.0)
    assert selection_score(10.0, 10.0, 1.0) == pytest.approx(0.75)
    # Colourfulness past the truth's earns nothing more; more colour error always costs.
    assert selection_score(10.0, 10.0, 1.4) == selection_score(10.0, 10.0, 1.0)
    assert selection_score(9.0, 10.0, 0.3) < selection_score(9.0, 10.0, 0.1)
    assert selection_score(9.5, 10.0, 0.5) > selection_score(9.0, 10.0, 0.5)


def test_the_default_crop_fits_small_shards(tmp_path: Path) -> None:
    small = write_shard(tmp_path / "s64.h5", dev_photos(6), size=64)
    write_shard(tmp_path / "s64.val.h5", dev_photos(2, stride=31), size=64, split="val")
    config = train.TrainConfig(
        shards=[str(small)],
        out=str(tmp_path / "run"),
        epochs=1,
        steps_per_epoch=1,
        batch_size=2,
        model="tiny",
        samples=0,
    )
    result = train.train(config)
    assert result.step == 1
    assert train.default_crop(64, 8) == 64 and train.default_crop(144, 8) == 128
    assert train.default_crop(100, 32) == 96
    with pytest.raises(Exception, match="smaller than the model's stride 32"):
        train.default_crop(20, 32)
