#!/bin/sh
# Creates the runbooks namespace (if missing) and registers the custom search attributes the
# runbooks use (RunbookName, RunbookTarget, Environment, TriggeredBy, RunbookStatus: Keyword). Run by the temporal-setup service of
# docker-compose.temporal.yml (temporalio/admin-tools image). Safe to re-run.
# `runbook setup` (the project's CLI) registers the same search attributes from a worker host.
#
# Environment: TEMPORAL_ADDRESS (read by the temporal CLI), TEMPORAL_NAMESPACE,
# TEMPORAL_NAMESPACE_RETENTION.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_NAMESPACE_RETENTION:=168h}"
export TEMPORAL_ADDRESS
NS=$TEMPORAL_NAMESPACE

log() { echo "[temporal-setup] $*"; }

# retry <attempts> <what> <command...>: every 2s until the command succeeds.
retry() {
  attempts=$1
  what=$2
  shift 2
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge "$attempts" ]; then
      log "gave up waiting for $what" >&2
      "$@" # once more, with its error shown
      exit 1
    fi
    sleep 2
  done
}

serving() { temporal operator cluster health | grep -q SERVING; }

ensure_namespace() {
  if temporal operator namespace describe --namespace "$NS" >/dev/null 2>&1; then
    log "namespace $NS exists"
    return 0
  fi
  log "creating namespace $NS (retention $TEMPORAL_NAMESPACE_RETENTION)"
  if ! out=$(temporal operator namespace create --namespace "$NS" --retention "$TEMPORAL_NAMESPACE_RETENTION" \
    --description "durable-runbooks" 2>&1); then
    case "$out" in
      *"already exists"* | *"AlreadyExists"*) log "namespace $NS exists" ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
}

has_search_attribute() {
  temporal operator search-attribute list --namespace "$NS" --output json |
    jq -e --arg n "$1" '(.customAttributes // {}) | has($n)' >/dev/null 2>&1
}

ensure_search_attribute() {
  name=$1
  type=$2
  if has_search_attribute "$name"; then
    log "search attribute $name exists"
    return 0
  fi
  log "registering search attribute $name ($type)"
  if ! out=$(temporal operator search-attribute create --namespace "$NS" --name "$name" --type "$type" 2>&1); then
    case "$out" in
      *"different type"*) echo "$out" >&2; exit 1 ;;
      *"already exists"* | *"AlreadyExists"*) log "search attribute $name exists" ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
}

log "waiting for the frontend at $TEMPORAL_ADDRESS"
retry 90 "the Temporal frontend" serving
ensure_namespace
# A new namespace reaches every service's namespace cache within ~10s.
retry 60 "namespace $NS" temporal operator search-attribute list --namespace "$NS"
ensure_search_attribute RunbookName Keyword
ensure_search_attribute RunbookTarget Keyword
ensure_search_attribute Environment Keyword
ensure_search_attribute TriggeredBy Keyword
ensure_search_attribute RunbookStatus Keyword
log "done"
