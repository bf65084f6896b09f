"""The ``framerturbo`` subcommands, one module per area; each module's ``register(sub)`` adds
its parsers. Heavy imports happen inside the handlers, so ``--help`` stays fast."""

from . import data, evaluation, inference, training

MODULES = (inference, training, data, evaluation)
