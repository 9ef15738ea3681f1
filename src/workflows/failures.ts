/**
 * Failure types: the `type` of every ApplicationFailure the activities and workflows throw, and the lists of those
 * a retry cannot fix (`nonRetryableErrorTypes` of the activity option sets). The strings are in recorded histories
 * and in what operators see: never rename one. No imports, so workflows, activities and clients all use it.
 */
export const FAILURES = {
  // bad input or configuration: nothing was started or changed
  BadInput: 'BadInput',
  ConfigError: 'ConfigError',
  /** The name of config/secrets.ts's SecretError (a secret that cannot be read). */
  SecretError: 'SecretError',
  UnknownTarget: 'UnknownTarget',
  UnknownSecretSet: 'UnknownSecretSet',
  PolicyError: 'PolicyError',
  WrongHost: 'WrongHost',
  // Docker, nginx, HTTP
  Cancelled: 'Cancelled',
  DockerTimeout: 'DockerTimeout',
  DockerCommandFailed: 'DockerCommandFailed',
  ContainerMissing: 'ContainerMissing',
  ImageMissing: 'ImageMissing',
  PortTaken: 'PortTaken',
  NoFreePort: 'NoFreePort',
  HealthGateFailed: 'HealthGateFailed',
  NginxConfigInvalid: 'NginxConfigInvalid',
  NginxReloadFailed: 'NginxReloadFailed',
  // deploy
  CanaryFailed: 'CanaryFailed',
  RollbackRequested: 'RollbackRequested',
  DeployFailed: 'DeployFailed',
  NothingDeployed: 'NothingDeployed',
  MixedVersions: 'MixedVersions',
  // backup and restore
  DatabaseMissing: 'DatabaseMissing',
  PgDumpFailed: 'PgDumpFailed',
  RedisSaveFailed: 'RedisSaveFailed',
  RedisDataDir: 'RedisDataDir',
  BackupNotFound: 'BackupNotFound',
  BackupInvalid: 'BackupInvalid',
  PgRestoreFailed: 'PgRestoreFailed',
  VerificationFailed: 'VerificationFailed',
  QuiesceRefused: 'QuiesceRefused',
  SwapStateUnexpected: 'SwapStateUnexpected',
  RefusedDrop: 'RefusedDrop',
  HealthCheckFailed: 'HealthCheckFailed',
  // secret rotation
  RotationInProgress: 'RotationInProgress',
  RotationNotFound: 'RotationNotFound',
  RotationFailed: 'RotationFailed',
  RoleMissing: 'RoleMissing',
  RolesAmbiguous: 'RolesAmbiguous',
  UserMissing: 'UserMissing',
  ApplyFailed: 'ApplyFailed',
  VerifyFailed: 'VerifyFailed',
  OldCredentialStillValid: 'OldCredentialStillValid',
  EnvRestoreFailed: 'EnvRestoreFailed',
  GitHubRequestFailed: 'GitHubRequestFailed',
  GitHubRestoreFailed: 'GitHubRestoreFailed',
  // notifications
  SmsRejected: 'SmsRejected',
  // ask-on-failure
  StepAborted: 'StepAborted',
} as const;

/** Compile-time check: every key is its own string (a typo in a value is a type error, not a silently new type). */
type KeysAreValues<T extends { readonly [K in keyof T]: K }> = T;

export type FailureType = (typeof FAILURES)[keyof KeysAreValues<typeof FAILURES>];

const F = FAILURES;

/** What a retry cannot fix, per activity option set (the workflows' `retry.nonRetryableErrorTypes`). */
export const NON_RETRYABLE = {
  /** Long dumps and restores (activity-options LONG). */
  long: [F.DatabaseMissing],
  /** Backup dumps and snapshots (backup.ts). */
  backup: [F.UnknownTarget, F.SecretError, F.RedisDataDir, F.DatabaseMissing],
  /** Docker-host steps of a deploy or scale (fleet.ts). */
  fleetStep: [F.WrongHost, F.UnknownTarget, F.BadInput, F.ImageMissing, F.PortTaken, F.NginxConfigInvalid],
  /** A new instance's health gate (fleet.ts). */
  healthGate: [F.HealthGateFailed, F.WrongHost],
  /** The incident's escalation-policy lookup (incident.ts). */
  policyLookup: [F.PolicyError],
  /** Remediation steps (remediate-service.ts). */
  remediation: [F.BadInput, F.ContainerMissing],
} satisfies Record<string, FailureType[]>;
