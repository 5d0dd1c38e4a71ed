#!/bin/sh
# Entry point of the syncagent image: load secrets, migrate the state DB, then run the command.
#
# 1. Every file in $SYNCAGENT_SECRETS_DIR (default /run/secrets, where compose and swarm mount
#    secrets) whose name is an environment variable name, e.g. SYNCAGENT_HUBSPOT__ACCESS_TOKEN
#    or PGPASSWORD, becomes that variable. Values are never printed.
# 2. Commands that run cycles or serve first run `syncagent db upgrade`: idempotent, and safe
#    when several agents start at once (they take turns under a lock; see state/migrate.py).
#    SYNCAGENT_MIGRATE=0 skips it (e.g. when a release job migrates instead). Read-only
#    commands such as the health check's `status --check` never migrate.
# 3. `exec` hands PID 1 to syncagent, so SIGTERM from `docker stop` reaches it directly.
set -eu

load_secrets() {
    secrets_dir="${SYNCAGENT_SECRETS_DIR:-/run/secrets}"
    [ -d "$secrets_dir" ] || return 0
    for file in "$secrets_dir"/*; do
        [ -f "$file" ] || continue
        name=$(basename "$file")
        case "$name" in
            "" | [0-9]* | *[!A-Z0-9_]*) continue ;;  # not an upper-case variable name
        esac
        value=$(cat "$file")  # drops trailing newlines, keeps inner ones (a PEM key)
        export "$name=$value"
    done
}

migrates_first() {
    case "${1:-}" in
        run | sync | serve | rescore | dry-run) return 0 ;;
        *) return 1 ;;
    esac
}

load_secrets
if migrates_first "$@" && [ "${SYNCAGENT_MIGRATE:-1}" != "0" ]; then
    syncagent db upgrade >&2  # stdout stays the command's own (e.g. sync --once --json)
fi
exec syncagent "$@"
