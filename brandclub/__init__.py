"""The old name of ``stacktools``, kept only for the commands the workflows and the README still
spell ``python -m brandclub...``; remove it once they call ``python -m stacktools...``."""
