import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Resources } from './resources.ts';

/**
 * The PostgreSQL server benchmarks create their databases on. Only loopback addresses are accepted:
 * benchmark traffic never leaves this machine.
 */
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!LOOPBACK.test(host)) throw new Error(`benchmarks only talk to loopback addresses; ${host} is not one (BENCH_PG_URL)`);
}

export interface BenchDatabase {
  name: string;
  url: string;
}

/** Creates `evalops_bench_<random>` and registers its drop (WITH (FORCE): leftover sessions do not block it). */
export async function createBenchDatabase(resources: Resources, purpose: string): Promise<BenchDatabase> {
  assertLoopback(PG_ADMIN_URL);
  const name = `evalops_bench_${purpose}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  resources.defer(`database ${name}`, () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A small pool for the benchmark's own queries (counting, timestamps), closed at the end. */
export function benchPool(resources: Resources, url: string, max = 2): pg.Pool {
  assertLoopback(url);
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000, application_name: 'evalops-bench' });
  pool.on('error', () => {});
  resources.defer('bench pool', () => pool.end());
  return pool;
}
