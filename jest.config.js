// One run starts each real server once (global setup) and shares it across test files.
// execa and its dependencies ship ESM only: swc turns them into CommonJS for Jest's module system.
const esmOnly = [
  'execa', '@sindresorhus', 'get-stream', 'human-signals', 'is-plain-obj', 'is-stream', 'npm-run-path',
  'path-key', 'pretty-ms', 'parse-ms', 'strip-final-newline', 'unicorn-magic', 'yoctocolors', 'figures',
  'is-unicode-supported', '@sec-ant', 'signal-exit',
];
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j|mj)s$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  // unicorn-magic exports only an "import" condition; point Jest's CommonJS resolver at its file.
  moduleNameMapper: { '^unicorn-magic$': '<rootDir>/node_modules/unicorn-magic/node.js' },
  setupFiles: ['<rootDir>/test/support/runtime.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 120_000,
  maxWorkers: 2,
  verbose: true,
};
