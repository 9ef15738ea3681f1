// Not a config of its own: the parts jest.config.js, jest.faults.config.js and jest.bench.config.js share.
// The harness every Jest config here shares: how TypeScript and ESM-only packages load, and the real servers
// (started once per run by global setup, shared across test files) for the configs that need them.
// execa and its dependencies ship ESM only: swc turns them into CommonJS for Jest's module system.
const esmOnly = [
  'execa', '@sindresorhus', 'get-stream', 'human-signals', 'is-plain-obj', 'is-stream', 'npm-run-path',
  'path-key', 'pretty-ms', 'parse-ms', 'strip-final-newline', 'unicorn-magic', 'yoctocolors', 'figures',
  'is-unicode-supported', '@sec-ant', 'signal-exit',
];
/** Module loading and runtime setup, without any server. */
const harness = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  // unicorn-magic exports only an "import" condition; point Jest's CommonJS resolver at its file.
  moduleNameMapper: { '^unicorn-magic$': '<rootDir>/node_modules/unicorn-magic/node.js' },
  setupFiles: ['<rootDir>/test/support/runtime.ts'],
};
/** The harness plus Temporal, PostgreSQL, Redis and dockerd, started by global setup and stopped by pid after the run. */
const servers = {
  ...harness,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};
module.exports = { harness, servers };
