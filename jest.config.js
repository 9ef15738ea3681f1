// Two projects. `unit` (test/**/*.unit.test.ts): no server, no root, no Docker, no product process; Node alone
// runs it in seconds (`npm run test:unit`). `integration` (every other *.test.ts): real servers, started once by
// its global setup, which Jest runs only when a test of that project is selected.
const { harness, servers } = require('./jest.base.config');
/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...harness, displayName: 'unit', testMatch: ['**/*.unit.test.ts'] },
    { ...servers, displayName: 'integration', testMatch: ['**/*.test.ts'], testPathIgnorePatterns: ['/node_modules/', '\\.unit\\.test\\.ts$'] },
  ],
  testTimeout: 120_000,
  maxWorkers: 2,
  verbose: true,
};
