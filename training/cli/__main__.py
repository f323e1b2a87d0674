"""``python -m training.cli``: the ``bonemet`` command."""

from training.cli import main

main()
