"""train.py end to end on tiny shards of real dev photos with the tiny preset: a few steps each."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import REPO, dev_photos
from test_dataset import write_shard

from colorize_cli.errors import ModelError, TrainingError, UsageError
from colorize_cli.nets.rebalance import ab_histogram, rebalancing_weights
from colorize_cli.nets.recipes import get_recipe
from colorize_cli.progress import NullProgress
from colorize_cli.training import run_dir, train
from colorize_cli.training.devices import parse_devices


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """set.h5 (8 photos, 40 px) with set.val.h5 (2 photos) beside it, as `prepare` writes them."""
    folder = tmp_path_factory.mktemp("shards")
    photos = dev_photos(10)
    write_shard(folder / "set.h5", photos[:8])
    write_shard(folder / "set.val.h5", photos[8:], split="val")
    return folder / "set.h5"


def settings(shards: Path, out: Path, **changes) -> train.TrainConfig:
    base = train.TrainConfig(
        shards=[str(shards)],
        out=str(out),
        epochs=2,
        batch_size=4,
        crop=32,
        model="tiny",
        recipe="l1-warmup",
        samples=2,
    )
    return replace(base, **changes)


def weights(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def test_a_short_run_writes_the_whole_run_directory(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = train.train(settings(shards, out))
    assert (result.epoch, result.step) == (2, 4)
    lines = run_dir.read_metrics(out)
    assert [line["epoch"] for line in lines] == [1, 2]
    for line in lines:
        for name in ("loss_g", "loss_d", "loss_l1", "loss_adv", "val_l1_ab", "val_psnr"):
            assert np.isfinite(line[name]), name
        assert 0 < line["val_l1_ab"] < 60 and 10 < line["val_psnr"] < 60
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["model"] == "tiny"
    assert [Path(s["path"]).name for s in config["data"]["val"]] == ["set.val.h5"]
    assert config["data"]["train"][0]["images"] == 8
    grid = keras.utils.load_img(out / "samples" / "epoch-002.png")
    assert grid.size == (3 * 32, 2 * 32)
    assert sorted(p.name for p in (out / "checkpoints").glob("*.index")) == [
        "ckpt-2.index",
        "ckpt-4.index",
    ]
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    lightness = np.full((1, 64, 48, 1), 50.0, np.float32)
    assert model.predict(lightness, verbose=0).shape == (1, 64, 48, 2)
    # best.keras is the epoch with the lowest selection score: the last one only if it improved.
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    last_is_best = lines[1]["val_selection"] < lines[0]["val_selection"]
    same = all(np.array_equal(a, b) for a, b in zip(weights(best), weights(model), strict=True))
    assert same == last_is_best
    # scripts/export_checkpoint.py cuts a kept checkpoint's generator: the last one is model.keras.
    script = [sys.executable, str(Path(__file__).parents[1] / "scripts" / "export_checkpoint.py")]
    cut = tmp_path / "cut.keras"
    done = subprocess.run([*script, str(out), "4", str(cut)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    exported = keras.saving.load_model(cut, safe_mode=True)
    assert all(np.array_equal(a, b) for a, b in zip(weights(exported), weights(model), strict=True))
    missing = subprocess.run([*script, str(out), "3", str(cut)], capture_output=True, text=True)
    assert missing.returncode != 0 and "no checkpoint at step 3 (kept: 2, 4)" in missing.stderr


def test_tensorboard_logs_need_the_tensorboard_package(shards: Path, tmp_path: Path) -> None:
    config = settings(shards, tmp_path / "run", epochs=1, tensorboard=True)
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(UsageError, match="pip install tensorboard"):
            train.train(config)
    else:
        train.train(config)
        assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_overfitting_one_batch_cuts_the_l1_loss(shards: Path, tmp_path: Path) -> None:
    one_batch = write_shard(tmp_path / "four.h5", dev_photos(4), size=32)
    config = settings(one_batch, tmp_path / "run", epochs=5, steps_per_epoch=20, val=[str(shards)])
    train.train(config)
    l1 = [line["loss_l1"] for line in run_dir.read_metrics(tmp_path / "run")]
    assert l1[-1] < 0.6 * l1[0], l1


class StopAt(NullProgress):
    """A progress sink that sends this process `signum` when the run reaches `step`."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def advance(self, n: int = 1, **fields) -> None:
        if fields.get("step") == self.step:
            os.kill(os.getpid(), self.signum)


def test_stop_mid_epoch_then_resume_equals_one_uninterrupted_run(
    shards: Path, tmp_path: Path
) -> None:
    straight = train.train(settings(shards, tmp_path / "a", steps_per_epoch=3))
    config = settings(shards, tmp_path / "b", steps_per_epoch=3)
    with pytest.raises(train.TrainingInterrupted, match="--resume") as stopped:
        train.train(config, progress=StopAt(2, signal.SIGTERM))
    assert stopped.value.exit_code == 130
    assert (tmp_path / "b" / "checkpoints" / "ckpt-2.index").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    resumed = train.resume(tmp_path / "b")
    assert resumed.step == straight.step == 6
    for a, b in zip(weights(straight.generator), weights(resumed.generator), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    lines = run_dir.read_metrics(tmp_path / "a"), run_dir.read_metrics(tmp_path / "b")
    assert len(lines[0]) == len(lines[1]) == 2
    for a, b in zip(*lines, strict=True):
        assert a["loss_g"] == pytest.approx(b["loss_g"], rel=1e-5)
        assert a["val_l1_ab"] == pytest.approx(b["val_l1_ab"], rel=1e-5)


def test_resume_can_add_epochs_and_refuses_a_second_start(shards: Path, tmp_path: Path) -> None:
    config = settings(shards, tmp_path / "run", epochs=1)
    train.train(config)
    with pytest.raises(TrainingError, match="--resume"):
        train.train(config)
    result = train.resume(tmp_path / "run", epochs=2)
    assert result.epoch == 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["settings"]["epochs"] == 2
    with pytest.raises(TrainingError, match="not a training run"):
        train.resume(tmp_path / "elsewhere")


STOPPABLE = """
import sys
from colorize_cli.training import train
config = train.TrainConfig(shards=[sys.argv[1]], out=sys.argv[2], epochs=1000, batch_size=4,
                           crop=32, model="tiny", recipe="l1-warmup", samples=0)
try:
    train.train(config)
except train.TrainingInterrupted as exc:
    print(exc)
    sys.exit(exc.exit_code)
"""


def test_sigint_saves_a_checkpoint_and_exits_130(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE, str(shards), str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not run_dir.read_metrics(out) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 130, stdout
    assert f"colorize train --resume {out}" in stdout
    step = int(stdout.split(" at step ")[1].split(":")[0])
    assert (out / "checkpoints" / f"ckpt-{step}.index").exists()


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = get_recipe("pix2pix")

    class PoisonedAtStep3(type(recipe)):
        def generator_loss(self, real, fake, fake_logits, step, stage=None, color_weights=None):
            total, parts = super().generator_loss(
                real, fake, fake_logits, step, stage, color_weights
            )
            return total * (1.0 / (2.0 - keras.ops.cast(step, "float32"))), parts

    monkeypatch.setattr(train, "get_recipe", lambda name: PoisonedAtStep3(**vars(recipe)))
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match="step 3.*ckpt-2"):
        train.train(settings(shards, out, checkpoint_every=1, epochs=3))
    assert sorted(p.name for p in (out / "checkpoints").glob("*.index"))[-1] == "ckpt-2.index"


def test_the_paper_recipe_trains_an_rgb_generator(shards: Path, tmp_path: Path) -> None:
    result = train.train(settings(shards, tmp_path / "run", recipe="paper", epochs=1))
    assert result.generator.output_shape[-1] == 3
    assert np.isfinite(result.metrics["loss_mse"]) and np.isfinite(result.metrics["val_psnr"])


def test_the_rebalanced_recipe_weighs_colours_from_the_training_photos(
    shards: Path, tmp_path: Path
) -> None:
    run = train._Run(settings(shards, tmp_path / "run", recipe="rebalanced"), None, NullProgress())
    expected = rebalancing_weights(ab_histogram(run.data.train.rgb), 0.9)
    np.testing.assert_array_equal(np.asarray(run.color_weights, np.float32), expected)
    result = run.fit()
    assert np.isfinite(result.metrics["loss_l1"]) and np.isfinite(result.metrics["val_l1_ab"])
    # --rebalance sets the mix, on any a*b* recipe: 1 gives every colour the same weight.
    milder = train._Run(settings(shards, tmp_path / "mild", rebalance=1.0), None, NullProgress())
    assert milder.recipe.rebalance == 1.0
    np.testing.assert_allclose(milder.color_weights, 1.0, rtol=1e-6)


def test_init_fine_tunes_from_a_trained_generator(shards: Path, tmp_path: Path) -> None:
    first = train.train(settings(shards, tmp_path / "first", epochs=1))
    tuned = train.train(
        settings(shards, tmp_path / "tuned", epochs=1, init=str(first.model_path), lr=1e-12)
    )
    for a, b in zip(weights(first.generator), weights(tuned.generator), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ModelError, match="does not match --model tiny with --recipe paper"):
        train.train(settings(shards, tmp_path / "x", recipe="paper", init=str(first.model_path)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crop": 36}, "multiple of the model's stride 8"),
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": 64}, "larger than the 8 training photos"),
        ({"model": "huge"}, "unknown model preset"),
        ({"recipe": "magic"}, "unknown recipe"),
        ({"precision": "mixed", "devices": ["/cpu:0"]}, "needs a GPU"),
        ({"lr": -1.0}, "--lr"),
        ({"rebalance": 1.5}, "--rebalance must be between 0 and 1"),
        ({"recipe": "paper", "rebalance": 0.5}, "rebalancing needs the ab output"),
    ],
)
def test_bad_settings_are_usage_errors(shards: Path, tmp_path: Path, changes, message) -> None:
    with pytest.raises(UsageError, match=message):
        train.train(settings(shards, tmp_path / "run", **changes))


def test_parse_devices() -> None:
    assert parse_devices(None, True) == ["/cpu:0"]
    assert parse_devices(None, False) is None
    with pytest.raises(UsageError, match="exclude"):
        parse_devices("0", True)
    with pytest.raises(UsageError, match="GPU numbers"):
        parse_devices("first", False)
    with pytest.raises(UsageError, match=r"no GPU 7 here; available: .*CPU"):
        parse_devices("7", False)


WORKER = """
import sys
import numpy as np
from colorize_cli.training import train
config = train.TrainConfig(shards=[sys.argv[1]], out=sys.argv[2], epochs=2, steps_per_epoch=2,
                           batch_size=4, crop=32, model="tiny", recipe="l1-warmup",
                           samples=1)
result = train.train(config)
np.savez(sys.argv[3], *result.generator.get_weights())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_finish_with_identical_weights(
    shards: Path, tmp_path: Path
) -> None:
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER,
                    str(shards),
                    str(tmp_path / "run"),
                    str(tmp_path / f"w{index}.npz"),
                ],
                cwd=REPO,
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-3000:]
    chief, other = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert len(chief.files) == len(other.files) > 0
    for name in chief.files:
        np.testing.assert_array_equal(chief[name], other[name])
    assert [line["step"] for line in run_dir.read_metrics(tmp_path / "run")] == [2, 4]
    assert not list((tmp_path / "run").glob(".worker-*"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["replicas"] == 2
