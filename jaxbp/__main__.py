"""``python -m jaxbp`` runs the command line."""

from jaxbp.cli import command

command()
