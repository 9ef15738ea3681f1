// Every workflow of the project plus a stand-in for the deploy runbook's `scale` workflow (issue 6), for tests
// of the remediation ladder: same type name and input, records nothing, returns what it was asked to do.
export * from '../../src/workflows';

export interface ScaleInput {
  service: string;
  instances: number;
  requestedBy?: string;
  reason?: string;
}

export function scale(input: ScaleInput): Promise<{ service: string; instances: number; requestedBy?: string; reason?: string }> {
  return Promise.resolve({ ...input });
}
