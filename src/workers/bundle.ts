#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/** Build step: bundle the workflows once, so a worker starts without webpack (`npm run build` runs this). */
export const BUNDLE_PATH = path.join(__dirname, '..', 'workflow-bundle.js');

/** Interceptors bundled with the workflows: step summaries in the Web UI and run/step metrics (see interceptors.ts). */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/interceptors')];

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
  });
  writeFileSync(BUNDLE_PATH, code);
  process.stdout.write(`workflow bundle: ${path.relative(process.cwd(), BUNDLE_PATH)} (${(code.length / 1024).toFixed(0)} KiB)\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
