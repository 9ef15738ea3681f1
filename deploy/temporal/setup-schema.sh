#!/bin/sh
# Creates (if missing) and migrates the Temporal databases on PostgreSQL.
# Run by the temporal-schema service of docker-compose.temporal.yml (temporalio/admin-tools image).
# Safe to re-run: an existing database is kept, setup-schema only adds the version tables,
# update-schema applies just the versions not applied yet. Run it again after bumping the
# server image tag. It never drops anything.
#
# Environment: SQL_PLUGIN SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD (read by temporal-sql-tool too),
# TEMPORAL_DBNAME, TEMPORAL_VISIBILITY_DBNAME; with OpenSearch/Elasticsearch visibility
# (docker-compose.temporal.opensearch.yml) also ES_SCHEME ES_HOST ES_PORT ES_VERSION ES_VISIBILITY_INDEX.
set -eu

: "${SQL_PLUGIN:=postgres12}"
: "${SQL_HOST:?SQL_HOST is required}"
: "${SQL_PORT:=5432}"
: "${SQL_USER:?SQL_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
: "${TEMPORAL_DBNAME:=temporal}"
: "${TEMPORAL_VISIBILITY_DBNAME:=temporal_visibility}"
export SQL_PLUGIN SQL_HOST SQL_PORT SQL_USER SQL_PASSWORD
export PGPASSWORD="$SQL_PASSWORD"

SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

log() { echo "[temporal-schema] $*"; }

check_name() {
  case "$1" in
    '' | [!a-z_]* | *[!a-z0-9_]*) log "invalid database name '$1' (use [a-z_][a-z0-9_]*)" >&2; exit 2 ;;
  esac
}

wait_for_postgres() {
  i=0
  until pg_isready -q -h "$SQL_HOST" -p "$SQL_PORT" -U "$SQL_USER" -d postgres; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then
      log "PostgreSQL at $SQL_HOST:$SQL_PORT not ready after 120s" >&2
      exit 1
    fi
    sleep 2
  done
}

ensure_database() {
  db=$1
  exists=$(psql -h "$SQL_HOST" -p "$SQL_PORT" -U "$SQL_USER" -d postgres -v ON_ERROR_STOP=1 -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$db'")
  if [ "$exists" = "1" ]; then
    log "database $db exists"
  else
    log "creating database $db"
    temporal-sql-tool --db "$db" create-database
  fi
}

migrate() {
  db=$1
  dir=$2
  log "schema of $db: setup-schema, then update-schema from $dir"
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$dir"
}

check_name "$TEMPORAL_DBNAME"
check_name "$TEMPORAL_VISIBILITY_DBNAME"
wait_for_postgres

ensure_database "$TEMPORAL_DBNAME"
migrate "$TEMPORAL_DBNAME" "$SCHEMA_ROOT/temporal/versioned"

if [ -n "${ES_HOST:-}" ]; then
  # Visibility in OpenSearch/Elasticsearch: the index template and the index (kept if it exists).
  es="${ES_SCHEME:-http}://$ES_HOST:${ES_PORT:-9200}"
  : "${ES_VERSION:=v7}"
  : "${ES_VISIBILITY_INDEX:=temporal_visibility_v1}"
  i=0
  until curl -sf "$es/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then log "search engine at $es not ready after 120s" >&2; exit 1; fi
    sleep 2
  done
  log "visibility index template and index $ES_VISIBILITY_INDEX at $es"
  curl -sf -X PUT "$es/_template/temporal_visibility_v1_template" -H 'Content-Type: application/json' \
    --data-binary "@/etc/temporal/schema/elasticsearch/visibility/index_template_$ES_VERSION.json" >/dev/null
  curl -sf --head "$es/$ES_VISIBILITY_INDEX" >/dev/null || curl -sf -X PUT "$es/$ES_VISIBILITY_INDEX" >/dev/null
else
  ensure_database "$TEMPORAL_VISIBILITY_DBNAME"
  migrate "$TEMPORAL_VISIBILITY_DBNAME" "$SCHEMA_ROOT/visibility/versioned"
fi

log "done"
