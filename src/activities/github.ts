import { ApplicationFailure } from '@temporalio/common';
import { Octokit } from '@octokit/rest';
import sodium from 'libsodium-wrappers';
import { redact } from '../config/secrets';
import { FAILURES } from '../workflows/failures';

/**
 * GitHub Actions repository secrets through the REST API: fetch the repository's public key
 * (`GET /repos/{owner}/{repo}/actions/secrets/public-key`), seal the value with it (libsodium sealed box),
 * `PUT /repos/{owner}/{repo}/actions/secrets/{name}`. PUT replaces: writing the same value again is a no-op
 * for the repository, so a retry is safe. `baseUrl` points at GitHub Enterprise (https://host/api/v3).
 */

export interface GitHubTarget {
  baseUrl: string;
  token: string;
  repo: string;
}

function client(t: GitHubTarget): Octokit {
  // Our own retries are Temporal's: no hidden ones in the client.
  return new Octokit({ auth: t.token, baseUrl: t.baseUrl, userAgent: 'durable-runbooks', request: { retries: 0 } });
}

/** A libsodium sealed box of `value` for the repository's public key (base64), as GitHub expects it. */
export async function sealForGitHub(value: string, publicKeyBase64: string): Promise<string> {
  await sodium.ready;
  const key = sodium.from_base64(publicKeyBase64, sodium.base64_variants.ORIGINAL);
  return sodium.to_base64(sodium.crypto_box_seal(sodium.from_string(value), key), sodium.base64_variants.ORIGINAL);
}

/** Errors that repeating will not fix (bad token, no such repository, invalid name) end the activity at once. */
function githubFailure(err: unknown, what: string): ApplicationFailure {
  const status = (err as { status?: number }).status;
  const message = redact(`GitHub ${what} failed${status ? ` (HTTP ${status})` : ''}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  const retryable = status === undefined || status >= 500 || status === 429 || status === 408;
  return ApplicationFailure.create({ message, type: FAILURES.GitHubRequestFailed, nonRetryable: !retryable });
}

/** Set each secret (name → plain value) in the repository's Actions secrets. */
export async function putRepositorySecrets(t: GitHubTarget, secrets: Record<string, string>): Promise<string[]> {
  const [owner = '', repo = ''] = t.repo.split('/');
  const gh = client(t);
  let publicKey: { key_id: string; key: string };
  try {
    publicKey = (await gh.rest.actions.getRepoPublicKey({ owner, repo })).data;
  } catch (err) {
    throw githubFailure(err, `public key of ${t.repo}`);
  }
  const written: string[] = [];
  for (const [name, value] of Object.entries(secrets)) {
    const encrypted_value = await sealForGitHub(value, publicKey.key);
    try {
      await gh.rest.actions.createOrUpdateRepoSecret({ owner, repo, secret_name: name, encrypted_value, key_id: publicKey.key_id });
    } catch (err) {
      throw githubFailure(err, `secret ${name} of ${t.repo}`);
    }
    written.push(name);
  }
  return written;
}
