"""``python -m dispatchflow.cli``: the same commands as the ``dispatchflow`` script."""

from . import main

main()
