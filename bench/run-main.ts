/**
 * How a benchmark script runs: its main function, then exit 0 (an error: printed, exit 1); a hard
 * limit (BENCH_TIMEOUT_MS) after which it gives up with exit 2, so no benchmark runs forever.
 */
export function runMain(name: string, limitMs: number, main: () => Promise<void>): void {
  const limit = setTimeout(() => {
    console.error(`${name}: gave up after ${limitMs / 60_000} min (BENCH_TIMEOUT_MS)`);
    process.exit(2);
  }, limitMs);
  limit.unref();
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
