// Every workflow the worker registers. One file per runbook.
export { backup } from './backup';
export { restoreDatabase, dropDatabaseLater } from './restore-database';
export { verifyBackup } from './verify-backup';
export { rotateSecrets } from './rotate-secrets';
export { deploy, scale } from './deploy';
export { incident } from './incident';
export { healthWatch } from './health-watch';
export { remediateService } from './remediate-service';
