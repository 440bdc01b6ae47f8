#!/bin/sh
# Entry point of the UI image: Streamlit reads sign-in settings only from a secrets.toml file,
# while ECS hands the Secrets Manager value over as DROPSCORE_UI_SECRETS. Write it (owner-only)
# to $HOME/.streamlit/secrets.toml on the task's writable /tmp volume, then become Streamlit.
set -eu
if [ -n "${DROPSCORE_UI_SECRETS:-}" ]; then
  umask 077
  mkdir -p "$HOME/.streamlit"
  printf '%s\n' "$DROPSCORE_UI_SECRETS" > "$HOME/.streamlit/secrets.toml"
  unset DROPSCORE_UI_SECRETS
fi
# Streamlit buffers an upload up to server.maxUploadSize before the app sees it: the server's
# limit is the app's own (DROPSCORE_UI_MAX_MB, default 50 as in ui/settings.py), one variable.
exec streamlit run "${DROPSCORE_UI_APP:-/opt/venv/lib/python3.11/site-packages/ui/app.py}" \
  --server.maxUploadSize "${DROPSCORE_UI_MAX_MB:-50}" "$@"
