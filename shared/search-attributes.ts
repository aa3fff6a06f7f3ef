/**
 * Custom search attributes registered on the Temporal server (`temporal server start-dev
 * --search-attribute NAME=TYPE`, or `temporal operator search-attribute create` on a real cluster).
 * Ids and statuses only: no lead PII ever goes into a search attribute.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  LeadId: 'Keyword',
  SourceId: 'Keyword',
  BuyerId: 'Keyword',
  LeadStatus: 'Keyword',
  BuyersTried: 'KeywordList',
  LeadDecisions: 'KeywordList',
  EndpointId: 'Keyword',
  BreakerState: 'Keyword',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;

/** Typed keys for workflow code (`upsertSearchAttributes`) and clients (`typedSearchAttributes`). */
export const SA = {
  LeadId: defineSearchAttributeKey('LeadId', SearchAttributeType.KEYWORD),
  SourceId: defineSearchAttributeKey('SourceId', SearchAttributeType.KEYWORD),
  BuyerId: defineSearchAttributeKey('BuyerId', SearchAttributeType.KEYWORD),
  LeadStatus: defineSearchAttributeKey('LeadStatus', SearchAttributeType.KEYWORD),
  BuyersTried: defineSearchAttributeKey('BuyersTried', SearchAttributeType.KEYWORD_LIST),
  LeadDecisions: defineSearchAttributeKey('LeadDecisions', SearchAttributeType.KEYWORD_LIST),
  EndpointId: defineSearchAttributeKey('EndpointId', SearchAttributeType.KEYWORD),
  BreakerState: defineSearchAttributeKey('BreakerState', SearchAttributeType.KEYWORD),
} as const;
