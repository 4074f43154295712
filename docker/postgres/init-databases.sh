#!/usr/bin/env bash
# Runs once, when the PostgreSQL volume is empty (docker-entrypoint-initdb.d): one role and one
# database for Prefect, one for caseconf. Names and passwords come from docker/.env.
set -euo pipefail

create() { # $1 = database, $2 = role, $3 = password
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v db="$1" -v role="$2" -v password="$3" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
}

create "$PREFECT_DB_NAME" "$PREFECT_DB_USER" "$PREFECT_DB_PASSWORD"
create "$CASECONF_DB_NAME" "$CASECONF_DB_USER" "$CASECONF_DB_PASSWORD"
