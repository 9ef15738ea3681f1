/**
 * Everything a history export shows: its JSON text, plus the decoded bytes of every payload (the CLI prints
 * payload data base64-encoded, so a plain-text secret would not appear in the JSON as such).
 */
export function historyTexts(json: string): { text: string; payloads: Array<{ encoding: string; data: string }> } {
  const payloads: Array<{ encoding: string; data: string }> = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    const meta = o.metadata as Record<string, unknown> | undefined;
    if (meta && typeof meta.encoding === 'string') {
      payloads.push({
        encoding: Buffer.from(meta.encoding, 'base64').toString('utf8'),
        data: typeof o.data === 'string' ? Buffer.from(o.data, 'base64').toString('latin1') : '',
      });
    }
    Object.values(o).forEach(walk);
  };
  walk(JSON.parse(json));
  return { text: json, payloads };
}

/** The secrets (of `values`) that appear in the export, as text or inside a payload. */
export function leakedIn(json: string, values: string[]): string[] {
  const { text, payloads } = historyTexts(json);
  return values.filter((v) => text.includes(v) || payloads.some((p) => p.data.includes(v)) || text.includes(Buffer.from(v).toString('base64')));
}
