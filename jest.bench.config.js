// `npm run bench`: benchmarks share the test harness (real servers started once) but not the test run.
// Each bench reports rows (ours vs a baseline measured in the same run); the teardown writes
// bench/results/latest.json and latest.md.
const { harness } = require('./jest.base.config');
module.exports = {
  ...harness,
  roots: ['<rootDir>/bench'],
  testMatch: ['**/*.bench.ts'],
  globalSetup: '<rootDir>/bench/support/global-setup.ts',
  globalTeardown: '<rootDir>/bench/support/global-teardown.ts',
  testTimeout: 1_800_000,
  verbose: false,
  maxWorkers: 1,
};
