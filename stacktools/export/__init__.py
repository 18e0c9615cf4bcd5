"""Compose-format stack files (``docker stack deploy``) from what the Pulumi program registers:
stack_files.py makes them (services.py and definitions.py translate, index.py says which stack
owns what, inputs.py guards that no registered input is lost), writing.py writes them."""

from stacktools.export.inputs import ExportError, UnknownInputError
from stacktools.export.stack_files import (
    EXPORT_DEFAULTS,
    StackExport,
    StackFile,
    export,
    export_stack,
)
from stacktools.export.writing import render_text, write

__all__ = [
    "EXPORT_DEFAULTS",
    "ExportError",
    "StackExport",
    "StackFile",
    "UnknownInputError",
    "export",
    "export_stack",
    "render_text",
    "write",
]
