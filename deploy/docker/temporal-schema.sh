#!/bin/sh
# Creates (first run) and migrates Temporal's two PostgreSQL databases, temporal and
# temporal_visibility, with temporal-sql-tool from temporalio/admin-tools: what the official
# compose samples (temporalio/samples-server, compose/scripts/setup-postgres.sh) do, made
# re-runnable. `create` fails when the database exists (said and ignored: setup-schema then fails
# for any other reason); setup-schema -v 0.0 and update-schema are idempotent, so every
# `docker compose up` also applies the migrations of a newer admin-tools image.
set -eu
: "${SQL_PASSWORD:?SQL_PASSWORD (the PostgreSQL password) is not set}"
HOST="${POSTGRES_HOST:-postgres}"
PORT="${POSTGRES_PORT:-5432}"
USER_NAME="${POSTGRES_USER:-temporal}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12
tries=0
until nc -z -w 2 "$HOST" "$PORT"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then echo "PostgreSQL at $HOST:$PORT did not answer within 60 s"; exit 1; fi
  sleep 2
done
for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  dir="${pair#*:}"
  # The password comes from SQL_PASSWORD (the tool's environment variable), not the command line.
  temporal-sql-tool --plugin postgres12 --ep "$HOST" -p "$PORT" -u "$USER_NAME" --db "$db" create \
    || echo "database $db: not created (it exists, or see the error above)"
  temporal-sql-tool --plugin postgres12 --ep "$HOST" -p "$PORT" -u "$USER_NAME" --db "$db" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$HOST" -p "$PORT" -u "$USER_NAME" --db "$db" update-schema -d "$SCHEMA_DIR/$dir/versioned"
done
echo "Temporal schema ready (temporal, temporal_visibility)"
