"""How far a pretrained encoder's BatchNorm batch statistics at batch 16 are from its moving ones.

    .venv/bin/python bench/encoder_bn.py RUN/model.keras data/dev160.val.h5

Runs a trained lite0 generator on the validation photos (centre crops, batches of 16) twice: with
every BatchNorm in inference mode (moving statistics: what `apply` runs) and with the encoder's
BatchNorm in training mode (each batch's own statistics: what `--encoder-bn train` trains with;
the decoder's stay in inference mode), and prints the L1 on a*b*
against the truth of each and the mean |difference| between the two predictions. A large
difference means training sees a different network than `apply` runs. Prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np

from colorize_cli.nets.saved import load_generator
from colorize_cli.tf_setup import import_tf
from colorize_cli.training.dataset import load_images, make_dataset

tf = import_tf()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("shards", nargs="+")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    args = parser.parse_args()
    import keras

    from colorize_cli.nets.pretrained import encoder_layers

    generator = load_generator(args.model)
    encoder = {id(layer) for layer in encoder_layers(generator)}
    for layer in generator.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and id(layer) not in encoder:
            layer.trainable = False  # Keras runs a non-trainable BatchNorm in inference mode
    batches = make_dataset(
        load_images(args.shards), args.batch, args.crop, shuffle=False, repeat=False, augment=False
    )
    l1 = {False: [], True: []}
    gaps = []
    for batch in batches:
        if batch["lightness"].shape[0] != args.batch:
            continue  # a short last batch has other statistics
        outputs = {mode: generator(batch["lightness"], training=mode).numpy() for mode in l1}
        for mode, out in outputs.items():
            l1[mode].append(np.abs(out - batch["ab"].numpy()).mean())
        gaps.append(np.abs(outputs[True] - outputs[False]).mean())
    print(f"| BatchNorm statistics (batch {args.batch}) | val L1 on a*b* (Lab units) |")
    print("|---|---|")
    print(f"| moving (inference mode, as apply runs) | {np.mean(l1[False]):.3f} |")
    print(f"| the batch's own, in the encoder (training mode) | {np.mean(l1[True]):.3f} |")
    print(f"\nmean |a*b* difference| between the two: {np.mean(gaps):.3f} Lab units")


if __name__ == "__main__":
    main()
