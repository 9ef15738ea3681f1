import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE } from './failures';

/** Steps that answer in seconds. They heartbeat while they run, so a dead worker is noticed in 10 s. */
export const QUICK: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 10 },
};

/**
 * Dumps and restores can take hours: liveness comes from heartbeats, not from the total. A cancelled run
 * waits for them to stop their child process and clean up, so "cancelled" means "nothing left behind".
 */
export const LONG: ActivityOptions = {
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '15 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE.long },
};
