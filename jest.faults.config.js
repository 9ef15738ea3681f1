// `npm run test:faults`: long crash loops, on the same harness and servers as the integration tests, outside the default run.
const { servers } = require('./jest.base.config');
/** @type {import('jest').Config} */
module.exports = { ...servers, testMatch: ['**/*.faults.ts'], testTimeout: 600_000, maxWorkers: 1, verbose: true };
