#!/bin/sh
# Creates the namespace (when missing) and registers the project's search attributes on a real
# Temporal cluster, then checks that every one is there. Idempotent: run it after every upgrade.
# Needs the `temporal` CLI (temporalio/admin-tools has it). The list must equal
# shared/search-attributes.ts: test/unit/compose.test.ts compares the two.
#   TEMPORAL_ADDRESS (default temporal:7233), TEMPORAL_NAMESPACE (default default),
#   TEMPORAL_NAMESPACE_RETENTION (closed workflows' history, default 168h)
set -eu
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-168h}"
SEARCH_ATTRIBUTES="LeadId=Keyword SourceId=Keyword BuyerId=Keyword LeadStatus=Keyword BuyersTried=KeywordList LeadDecisions=KeywordList EndpointId=Keyword BreakerState=Keyword LeadExpectedBy=Datetime"

tries=0
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 90 ]; then echo "Temporal at $ADDRESS was not healthy within 180 s"; exit 1; fi
  echo "waiting for Temporal at $ADDRESS…"; sleep 2
done

if ! temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION"
  tries=0
  until temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then echo "namespace $NAMESPACE did not appear within 30 s"; exit 1; fi
    sleep 1
  done
  echo "namespace $NAMESPACE created (retention $RETENTION)"
fi

# A namespace just created is not yet known to every part of the server (creating an attribute then
# answers "namespace not found"): rounds of create-what-is-missing until every one is listed.
round=0
last_error=""
while :; do
  listed="$(temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" 2>/dev/null || true)"
  missing=""
  for pair in $SEARCH_ATTRIBUTES; do
    printf '%s\n' "$listed" | grep -qw "${pair%%=*}" || missing="$missing $pair"
  done
  [ -z "$missing" ] && break
  round=$((round + 1))
  if [ "$round" -gt 30 ]; then
    echo "search attributes not registered on $NAMESPACE:$missing"
    echo "last error: $last_error"
    exit 1
  fi
  for pair in $missing; do
    if ! err="$(temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" --name "${pair%%=*}" --type "${pair#*=}" 2>&1 >/dev/null)"; then
      last_error="${pair%%=*}: $err"
    fi
  done
  sleep 2
done
echo "namespace $NAMESPACE ready with its search attributes: $SEARCH_ATTRIBUTES"
