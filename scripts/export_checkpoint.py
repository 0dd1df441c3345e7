"""Export the generator of one checkpoint of a training run as a `.keras` file.

    python scripts/export_checkpoint.py RUN STEP OUT.keras   # RUN/checkpoints/ckpt-STEP

How the bundled model was cut from its run (docs/model-card.md): `colorize train` writes
`model.keras` at each epoch's end; this picks an earlier checkpoint chosen by validation.
"""

import json
import sys
from pathlib import Path

from colorize_cli.nets.models import build_generator, model_config
from colorize_cli.nets.recipes import get_recipe
from colorize_cli.tf_setup import import_tf


def main(run: str, step: str, out: str) -> None:
    tf = import_tf()
    settings = json.loads((Path(run) / "config.json").read_text())["settings"]
    generator = build_generator(
        model_config(settings["model"], get_recipe(settings["recipe"]).output)
    )
    # train.py checkpoints the generator as the list of its variables (checkpointing.py).
    checkpoint = tf.train.Checkpoint(generator=generator.variables)
    checkpoint.restore(str(Path(run) / "checkpoints" / f"ckpt-{step}")).expect_partial()
    generator.save(out)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
