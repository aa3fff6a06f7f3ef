/**
 * Every signal, query and update of the project's workflows, in one place: the workflows,
 * the services and the tests import them from here.
 */
import { defineQuery } from '@temporalio/workflow';
import type { LeadView } from '../shared/delivery';

/** deliverLead: the lead's live delivery state (served by intake's GET /v1/leads/:leadId). */
export const leadStatusQuery = defineQuery<LeadView>('status');
