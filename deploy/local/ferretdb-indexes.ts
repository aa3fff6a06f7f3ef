/**
 * Containment indexes for FerretDB 1.x on PostgreSQL.
 *
 * FerretDB keeps a collection as a PostgreSQL table of one `jsonb` column and turns each MongoDB
 * index into a btree index on expressions (`_jsonb -> 'field'`). But it pushes an equality filter
 * down to PostgreSQL as jsonb containment, `_jsonb -> 'field' @> '"value"'`, and a btree cannot
 * serve `@>`: every find, even by `_id`, is a sequential scan of the table (measured: 140 ms for a
 * lead's entries among 20,000; see ARCHITECTURE.md, "Queries over the log"). A GIN index on the same expression
 * (`jsonb_path_ops`) serves it: the same query takes 0.07 ms.
 *
 * `addContainmentIndexes` adds one such index per equality field of each collection (derived from
 * the mongoose schemas by `equalityFields`), on the tables FerretDB made for one MongoDB database
 * (a PostgreSQL schema of the same name; FerretDB's own `_ferretdb_database_metadata` table maps
 * collections to tables). Idempotent; FerretDB ignores indexes it did not create, and dropping a
 * collection drops them with its table. Run it after the collections exist and before traffic
 * (`CREATE INDEX` holds a write lock on the table while it builds). Never needed on MongoDB.
 */
import { createHash } from 'node:crypto';
import { Client as PgClient } from 'pg';

const METADATA_TABLE = '_ferretdb_database_metadata';

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (text: string) => `'${text.replace(/'/g, "''")}'`;

/** `<table>_<8 hex of the field>_gin`: PostgreSQL names are at most 63 bytes. */
export function containmentIndexName(table: string, field: string): string {
  return `${table.slice(0, 40)}_${createHash('sha256').update(field).digest('hex').slice(0, 8)}_gin`;
}

export function containmentIndexSql(schema: string, table: string, field: string): string {
  return (
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(containmentIndexName(table, field))} ` +
    `ON ${quoteIdent(schema)}.${quoteIdent(table)} USING gin ((_jsonb -> ${quoteLiteral(field)}) jsonb_path_ops)`
  );
}

/**
 * Adds the GIN indexes for `fields` (collection → top-level field names) in the PostgreSQL schema
 * FerretDB uses for `mongoDatabase`. Returns how many indexes it asked for (existing ones included).
 */
export async function addContainmentIndexes(pgUrl: string, mongoDatabase: string, fields: Record<string, string[]>): Promise<number> {
  const client = new PgClient({ connectionString: pgUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [mongoDatabase, METADATA_TABLE]);
    if (!exists.rowCount) return 0;
    const rows = await client.query<{ collection: string; table: string }>(
      `SELECT _jsonb ->> '_id' AS collection, _jsonb ->> 'table' AS table FROM ${quoteIdent(mongoDatabase)}.${quoteIdent(METADATA_TABLE)}`,
    );
    let count = 0;
    for (const { collection, table } of rows.rows) {
      for (const field of fields[collection] ?? []) {
        await client.query(containmentIndexSql(mongoDatabase, table, field));
        count++;
      }
    }
    return count;
  } finally {
    await client.end();
  }
}
