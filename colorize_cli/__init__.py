"""colorize: train, evaluate and apply GAN models that colorize grayscale photographs."""

__version__ = "0.1.0"
