"""Learning-rate policies of the lectures as Keras callbacks.

* :class:`CoolDownOnPlateau`: reduce the rate by 10 once training has
  converged, 1-3 times, then stop and restore the best weights;
* :class:`BoldDriver`: grow the rate while the loss falls, halve it and undo
  the steps when it does not;
* :class:`CurvatureMonitor`: the Hessian's largest eigenvalue (and, for an
  adaptive optimizer, the preconditioned one) during training, in the
  epoch's logs;
* :class:`LearningRatePolicy` (in :mod:`keras_adaptive.callbacks.policy`):
  the base class of both, for writing another policy (see the
  documentation's "Writing a policy").

All work with float rates, ``LearningRateSchedule`` objects and callables,
under ``jit_compile=True``, and never change the optimizer's variables, so a
model saved after a policy changed its rate reloads with every optimizer
variable. A float rate is assigned in place; the scale of a schedule or
callable is a Python float of its ``ScaledLearningRate``, and each change of
it retraces the train function once. The schedules they use are in
:mod:`keras_adaptive.schedules`; the learning-rate range test is
:func:`keras_adaptive.find_learning_rate`.
"""

from keras_adaptive._deprecation import moved_names
from keras_adaptive.callbacks.bold_driver import BoldDriver
from keras_adaptive.callbacks.curvature_monitor import CurvatureMonitor
from keras_adaptive.callbacks.plateau import CoolDownOnPlateau
from keras_adaptive.callbacks.policy import LearningRatePolicy

__all__ = [
    "BoldDriver",
    "CoolDownOnPlateau",
    "CurvatureMonitor",
    "LearningRatePolicy",
]

# Deprecated in 0.3.0, removed in 0.4.0: names that moved out of `callbacks`.
__getattr__ = moved_names(
    __name__,
    {
        "ExponentialRamp": "keras_adaptive.schedules",
        "ScaledLearningRate": "keras_adaptive.schedules",
        "LearningRateRangeResult": "keras_adaptive.range_test",
        "find_learning_rate": "keras_adaptive.range_test",
    },
)
