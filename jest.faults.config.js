// `npm run test:faults`: long crash loops, on the same harness as the tests, outside the default run.
const base = require('./jest.config');
module.exports = { ...base, testMatch: ['**/*.faults.ts'], testTimeout: 600_000, maxWorkers: 1 };
