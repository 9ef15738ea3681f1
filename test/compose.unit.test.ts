import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../src/client/local-servers';
import { SEARCH_ATTRIBUTES } from '../src/config/search-attributes';

// The files of the production-like stack read as text (compose.test.ts runs the real `docker-compose config`).
const ROOT = projectRoot();

test('the cluster setup job registers every search attribute the runbooks set', () => {
  const script = readFileSync(path.join(ROOT, 'deploy', 'temporal', 'setup-namespace.sh'), 'utf8');
  const registered = [...script.matchAll(/^ensure_search_attribute (\w+) Keyword$/gm)].map((m) => m[1]);
  expect(registered.sort()).toEqual(SEARCH_ATTRIBUTES.map((k) => k.name).sort());
});

test('the worker image: two stages, the workflow bundle built in the first, a non-root user in the last', () => {
  const lines = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split('\n');
  const froms = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('FROM '));
  expect(froms.map(([l]) => l)).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
  const build = lines.slice(froms[0]![1], froms[1]![1]).join('\n');
  expect(build).toContain('npm run build'); // tsc + dist/workflow-bundle.js
  const runtime = lines.slice(froms[1]![1]);
  const users = runtime.filter((l) => l.startsWith('USER '));
  expect(users).toEqual(['USER node']);
  expect(runtime.join('\n')).toContain('COPY --from=build /src/dist ./dist');
});
