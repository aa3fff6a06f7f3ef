/**
 * Every activity of the delivery worker, built from its dependencies. Workflows import the
 * types only (`DeliveryActivities`, `BreakerActivities`) and proxy them.
 */
import { createAlerter } from './alerts';
import { createBreakerActivities } from './breaker';
import { createDeadLetterActivities } from './dead-letters';
import { createDeliveryActivities, type DeliveryDeps } from './delivery';
import { createStuckLeadActivities } from './stuck-leads';

export function createActivities(deps: DeliveryDeps) {
  const sendAlert = createAlerter(deps);
  return {
    ...createDeliveryActivities({ ...deps, sendAlert }),
    ...createBreakerActivities({ models: deps.models, sendAlert, logger: deps.logger }),
    ...createStuckLeadActivities({ ...(deps.client ? { client: deps.client } : {}), sendAlert, logger: deps.logger, notStartedAfterMs: deps.stuckNotStartedAfterMs ?? 120_000 }),
    ...createDeadLetterActivities({ models: deps.models, sendAlert, ...(deps.client ? { client: deps.client } : {}) }),
  };
}
