"""Compose-format stack files (``docker stack deploy``) from what the Pulumi program registers."""

from stacktools.export.stack_files import (
    EXPORT_DEFAULTS,
    ExportError,
    StackExport,
    StackFile,
    UnknownInputError,
    export,
    export_stack,
    write,
)

__all__ = [
    "EXPORT_DEFAULTS",
    "ExportError",
    "StackExport",
    "StackFile",
    "UnknownInputError",
    "export",
    "export_stack",
    "write",
]
