/**
 * Every activity of the delivery worker, built from its dependencies. Workflows import the
 * types only (`DeliveryActivities`, `BreakerActivities`) and proxy them.
 */
import { createAlerter } from './alerts';
import { createBreakerActivities } from './breaker';
import { createDeadLetterActivities } from './dead-letters';
import { createDeliveryActivities, type DeliveryDeps } from './delivery';

export function createActivities(deps: DeliveryDeps) {
  const sendAlert = createAlerter(deps);
  return {
    ...createDeliveryActivities(deps),
    ...createBreakerActivities({ models: deps.models, sendAlert, logger: deps.logger }),
    ...createDeadLetterActivities({ models: deps.models, sendAlert, ...(deps.client ? { client: deps.client } : {}) }),
  };
}
