import { pgAdmin } from './servers';

/** A small shop schema with related tables, to back up and compare. */
export async function seedShop(database: string, customers = 2000, ordersPerCustomer = 5): Promise<void> {
  const c = pgAdmin(database);
  await c.connect();
  try {
    await c.query(`
      CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL, created_at timestamptz NOT NULL);
      CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id), total numeric(10,2) NOT NULL, note text);
      INSERT INTO customers (name, email, created_at)
        SELECT 'customer ' || g, 'c' || g || '@example.test', timestamptz '2026-01-01' + g * interval '1 minute'
        FROM generate_series(1, $1::int) g;
      INSERT INTO orders (customer_id, total, note)
        SELECT 1 + (g % $1::int), round((g * 7.31)::numeric % 1000, 2), CASE WHEN g % 3 = 0 THEN 'gift ✓' END
        FROM generate_series(1, $1::int * $2::int) g;
    `.replace(/\$1::int/g, String(customers)).replace(/\$2::int/g, String(ordersPerCustomer)));
  } finally {
    await c.end();
  }
}

export interface Fingerprint {
  [table: string]: { rows: number; md5: string };
}

/** Row count and an md5 over the ordered contents of every user table. */
export async function fingerprint(database: string): Promise<Fingerprint> {
  const c = pgAdmin(database);
  await c.connect();
  try {
    const tables = await c.query<{ t: string }>(
      `SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`,
    );
    const out: Fingerprint = {};
    for (const { t } of tables.rows) {
      const r = await c.query<{ n: string; h: string | null }>(
        `SELECT count(*) AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS h FROM ${t} x`,
      );
      out[t] = { rows: Number(r.rows[0]?.n), md5: r.rows[0]?.h ?? '' };
    }
    return out;
  } finally {
    await c.end();
  }
}
