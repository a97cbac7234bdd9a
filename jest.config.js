/**
 * Test tiers by file suffix; each tier has its own npm script (see package.json).
 * ts-jest only transpiles (tsconfig.json sets isolatedModules): `npm test` type-checks the
 * whole tree, tests included, once (npm run typecheck) before any tier runs, instead of every
 * tier's workers type-checking each file again.
 */
const tier = (name, extra = {}) => ({
  displayName: name,
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: [`<rootDir>/test/**/*.${name}.test.ts`],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  ...extra,
});

module.exports = {
  projects: [
    tier('unit'),
    tier('contract'),
    tier('kernel'),
    tier('e2e'),
    tier('multihost'),
    tier('faults'),
  ],
};
