/** The workflow bundle's entry point: every workflow type the delivery worker hosts. */
export { deliverLead } from './deliverLead';
export { breaker } from './breaker';
export { bulkRedeliver, bulkRedeliverDeadLetters, deadLetterDigest, journalDailyRoot, piiRetention } from './operator-jobs';
export { stuckLeadSweep } from './sweeps';
export { leadReturn } from './returns';
