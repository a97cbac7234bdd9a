/**
 * The V8 flags loomd runs with, wherever it is started (the `loomd` shebang, the
 * systemd unit, the managed plugin's entrypoint, the image, `npm start`, the test
 * harness and the benchmarks; a unit test keeps those places in step with this list).
 *
 * --max-semi-space-size=2: loomd is a control-plane daemon whose live heap stays small
 * (about 15 MiB with 1,000 endpoints) while its calls make short-lived garbage in
 * bursts. V8's default young generation (16 MiB semi-spaces) then stays committed after
 * the burst, a third of loomd's memory; 2 MiB semi-spaces keep the committed heap near
 * the live one at the price of more, shorter scavenges (docs/benchmarks.md measures both).
 */
export const LOOMD_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
