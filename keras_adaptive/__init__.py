"""keras_adaptive: the optimizers and learning-rate policies of the lectures."""

__version__ = "0.1.0"
