// `npm run bench`: benchmarks share the test harness (real servers started once) but not the test run.
const base = require('./jest.config');
module.exports = { ...base, roots: ['<rootDir>/bench'], testMatch: ['**/*.bench.ts'], testTimeout: 900_000, verbose: false, maxWorkers: 1 };
