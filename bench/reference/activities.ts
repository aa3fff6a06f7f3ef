/** The reference shape's one activity: does nothing and answers at once. */
export function createReferenceActivities() {
  return {
    noop(_leadId: string, endpoint: number): Promise<number> {
      return Promise.resolve(endpoint);
    },
  };
}
export type ReferenceActivities = ReturnType<typeof createReferenceActivities>;
