# shellcheck shell=bash
# Edits of the files a running Frappe reads on every request: sites/common_site_config.json,
# sites/<site>/site_config.json and sites/apps.txt. Sourced (or inlined) after job-prelude.sh.
#
# Frappe's own `bench set-config` rewrites a config in place (frappe/installer.py,
# _update_config_file: open(path, "w"), then write), so a backend that reads it in between gets
# a truncated file: Frappe prints "common_site_config.json is invalid", goes on without the
# bench's settings and answers HTTP 500 (seen once in about 1,200 requests while the configurator
# ran). These helpers write the whole new file beside the old one, flush it to disk and rename it
# over the old one, so a reader sees it whole, before or after; and they write nothing when
# nothing changes, so a deploy that changes no value touches no file. The file keeps its mode
# (0644 when new). Each prints "changed" or "unchanged".

# One Python program for both helpers (one interpreter start per edit): `update FILE TYPE KEY
# VALUE ...` or `replace FILE` (the new content on standard input).
CONFIG_FILES_PY='
import json
import os
import sys
import tempfile
from pathlib import Path

mode, path, arguments = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
if mode == "replace":
    content = sys.stdin.buffer.read()
else:
    if not arguments or len(arguments) % 3:
        sys.exit("config_update: TYPE KEY VALUE triples expected")
    config = json.loads(path.read_text()) if path.is_file() else {}
    for kind, key, text in zip(arguments[::3], arguments[1::3], arguments[2::3], strict=True):
        if kind not in ("string", "json"):
            sys.exit(f"config_update: unknown type {kind!r} for {key}")
        config[key] = text if kind == "string" else json.loads(text)
    # Frappe`s own layout of its config files.
    content = json.dumps(config, indent=1, sort_keys=True).encode()
if path.is_file() and path.read_bytes() == content:
    print("unchanged")
    sys.exit(0)
file_mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
# A dot name: neither Frappe nor the jobs globs take it for a site or a config.
handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
try:
    with os.fdopen(handle, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(partial, file_mode)
    os.replace(partial, path)
except BaseException:
    os.unlink(partial)
    raise
print("changed")
'

# replace_file_if_changed FILE: FILE's new content from standard input.
replace_file_if_changed() { python3 -c "$CONFIG_FILES_PY" replace "$1"; }

# config_update FILE TYPE KEY VALUE [TYPE KEY VALUE ...]: sets each KEY of the JSON object in
# FILE (created when missing) to VALUE, a string (TYPE "string") or a JSON value (TYPE "json",
# e.g. a number), in Frappe's own layout (indent 1, sorted keys).
config_update() { python3 -c "$CONFIG_FILES_PY" update "$@"; }
