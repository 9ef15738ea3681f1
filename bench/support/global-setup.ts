import globalSetup from '../../test/support/global-setup';
import { resetPending } from './report';

/** The test harness's servers, and a fresh results table for this run. */
export default async function benchGlobalSetup(): Promise<void> {
  resetPending();
  await globalSetup();
}
