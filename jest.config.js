/** Test tiers by file suffix; each tier has its own npm script (see package.json). */
const tier = (name, extra = {}) => ({
  displayName: name,
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: [`<rootDir>/test/**/*.${name}.test.ts`],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: { warnOnly: false } }] },
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
