import { DefaultFailureConverter } from '@temporalio/common';

/**
 * The failure converter of an encrypting deployment (`temporal.encryption`): a failure's message and stack trace
 * travel as an encoded payload (`encodedAttributes`), which the payload codec then encrypts like every other
 * payload; the history keeps only "Encoded failure". Used by the client, the worker (activity failures) and the
 * workflow bundle (workflow failures), by path: the SDK loads it with `failureConverterPath`.
 * Workflow-safe (no Node built-ins): webpack bundles it into the workflow sandbox.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
