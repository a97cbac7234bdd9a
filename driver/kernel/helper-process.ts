/**
 * The process side of loom's small helpers run inside another network namespace (netns-helper.ts,
 * overlay-ns-helper.ts): the request is the JSON of argv[2], the answer the JSON on stdout; a
 * failure is its message on stderr and exit code 1.
 */
export function runHelper<Req, Res>(main: (req: Req) => Promise<Res>): void {
  main(JSON.parse(process.argv[2] ?? '{}') as Req)
    .then((r) => process.stdout.write(JSON.stringify(r)))
    .catch((err) => {
      process.stderr.write(String(err instanceof Error ? err.message : err));
      process.exit(1);
    });
}
