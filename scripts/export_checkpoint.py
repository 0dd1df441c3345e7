"""Export the generator of one checkpoint of a training run as a `.keras` file.

    python scripts/export_checkpoint.py RUN STEP OUT.keras   # a step `colorize info` or
                                                             # RUN/checkpoints/ lists

How the bundled model was cut from its run (docs/model-card.md): `colorize train` writes
`model.keras` at each epoch's end; this picks an earlier checkpoint chosen by validation.
"""

import sys
from pathlib import Path

from colorize_cli.config import TrainConfig
from colorize_cli.errors import ColorizeError
from colorize_cli.nets.models import model_config
from colorize_cli.nets.recipes import get_recipe
from colorize_cli.training import run_dir
from colorize_cli.training.checkpointing import RunCheckpoint
from colorize_cli.training.gan import build_gan


def main(run: str, step: str, out: str) -> None:
    settings = TrainConfig(**run_dir.read_config(Path(run))["settings"])
    recipe = get_recipe(settings.recipe)
    config = model_config(settings.model, recipe.output)
    gan = build_gan(config, recipe, precision=settings.precision, seed=settings.seed)
    checkpoint = RunCheckpoint(
        Path(run), 0, 1, [gan.generator, gan.discriminator], [gan.g_opt, gan.d_opt]
    )
    checkpoint.restore(int(step))
    run_dir.save_model(gan.generator, Path(out))
    print(out)


if __name__ == "__main__":
    try:
        main(*sys.argv[1:])
    except ColorizeError as exc:
        raise SystemExit(f"export_checkpoint: {exc}") from None
