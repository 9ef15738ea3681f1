import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { HISTORIES_DIR } from './support/histories';
import { workflowBundle } from './support/temporal';

// Histories recorded from real runs (RECORD_HISTORIES=1 npx jest ...). Replaying them against today's
// workflow code proves a change does not break runs that are in flight on a live cluster.
const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

test('recorded histories exist', () => {
  expect(files).toContain('backup-postgres.json');
});

test.each(files)('%s replays deterministically against the current workflow code', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, path.basename(file, '.json'));
});
