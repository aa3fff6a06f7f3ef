#!/bin/sh
# Registers the project's search attributes on a real Temporal cluster (idempotent: an existing
# attribute is reported and skipped). Keep in step with shared/search-attributes.ts.
set -u
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
until temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; do
  echo "waiting for Temporal at $ADDRESS…"; sleep 2
done
for pair in LeadId=Keyword SourceId=Keyword BuyerId=Keyword LeadStatus=Keyword BuyersTried=KeywordList LeadDecisions=KeywordList EndpointId=Keyword BreakerState=Keyword; do
  name="${pair%%=*}"; type="${pair#*=}"
  temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" --name "$name" --type "$type" \
    || echo "search attribute $name: already there (or see the error above)"
done
