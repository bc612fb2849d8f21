"""``python -m gradwise`` runs the command line (also under ``torchrun``)."""

from gradwise.cli import main

main()
