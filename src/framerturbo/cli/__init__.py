"""User interfaces: the ``framerturbo`` command line (``main``; one module per area of
subcommands, each with ``register(sub)``; heavy imports happen inside the handlers, so ``--help``
stays fast) and the Gradio app (``app``)."""
