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
  /** When a lead still delivering should be terminal by (its horizon): past it, the lead is "stuck". */
  LeadExpectedBy: 'Datetime',
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
  LeadExpectedBy: defineSearchAttributeKey('LeadExpectedBy', SearchAttributeType.DATETIME),
} as const;

/**
 * The most a keyword-list value may take (JSON bytes). The server refuses a search attribute value
 * over its per-value limit (2 KiB by default) and the workflow task would then fail forever; the
 * lists are kept well under it. The full story stays in the journal and the workflow state.
 */
export const KEYWORD_LIST_MAX_BYTES = 1_600;

/**
 * A bounded, de-duplicated keyword list: each value once (its latest occurrence wins the order),
 * the newest values kept when the list would exceed `maxBytes`. Pure: safe in workflow code.
 */
export function boundedKeywords(values: readonly string[], maxBytes = KEYWORD_LIST_MAX_BYTES): string[] {
  const seen = new Set<string>();
  const newestFirst: string[] = [];
  let bytes = 2; // []
  for (let i = values.length - 1; i >= 0; i--) {
    const value = values[i]!;
    if (seen.has(value)) continue;
    seen.add(value);
    const cost = value.length * 3 + 3; // worst case UTF-8, quotes and a comma
    if (bytes + cost > maxBytes) break;
    bytes += cost;
    newestFirst.push(value);
  }
  return newestFirst.reverse();
}
