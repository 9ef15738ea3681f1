import globalTeardown from '../../test/support/global-teardown';
import { writeResults } from './report';

export default async function benchGlobalTeardown(): Promise<void> {
  writeResults();
  await globalTeardown();
}
