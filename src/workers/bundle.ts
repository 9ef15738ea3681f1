#!/usr/bin/env node
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ENCODING_FAILURE_CONVERTER_PATH } from '../config/codec';
import { type Config } from '../config/schema';

/** Build step: bundle the workflows once, so a worker starts without webpack (`npm run build` runs this). */
export const BUNDLE_PATH = path.join(__dirname, '..', 'workflow-bundle.js');
/**
 * The same workflows with the encoding failure converter, for `temporal.encryption`: a workflow's own failure
 * (and the activity failures it passes on) leaves the sandbox with message and stack in an encrypted payload.
 * The converter is fixed at bundle time, hence a second bundle.
 */
export const ENCRYPTED_BUNDLE_PATH = path.join(__dirname, '..', 'workflow-bundle-encrypted.js');

/** Interceptors bundled with the workflows: step summaries in the Web UI and run/step metrics (see interceptors.ts). */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/interceptors')];

/** The prebuilt bundle for this config (encrypting or not), or undefined when it was not built (the worker bundles at start). */
export function prebuiltBundle(config: Config): { codePath: string } | undefined {
  const file = config.temporal.encryption ? ENCRYPTED_BUNDLE_PATH : BUNDLE_PATH;
  return existsSync(file) ? { codePath: file } : undefined;
}

async function main(): Promise<void> {
  for (const [file, failureConverterPath] of [[BUNDLE_PATH, undefined], [ENCRYPTED_BUNDLE_PATH, ENCODING_FAILURE_CONVERTER_PATH]] as const) {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
      ...(failureConverterPath ? { failureConverterPath } : {}),
    });
    writeFileSync(file, code);
    process.stdout.write(`workflow bundle: ${path.relative(process.cwd(), file)} (${(code.length / 1024).toFixed(0)} KiB)\n`);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
