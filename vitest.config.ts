import { defineConfig } from 'vitest/config';

// Integration files run once per database backend: the same contract suite on PGlite and PostgreSQL.
const integration = (db: 'pglite' | 'postgres') => ({
  extends: true as const,
  test: {
    name: `integration-${db}`,
    include: ['test/integration/**/*.test.ts'],
    // *.pg.test.ts need a PostgreSQL server (psql, a TCP proxy in front of it): PostgreSQL run only.
    exclude: db === 'pglite' ? ['test/integration/**/*.pg.test.ts'] : [],
    env: { EVALOPS_TEST_DB: db },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

// Browser tests: the dashboard in Debian's Chromium against a real server, on each backend.
const e2e = (db: 'pglite' | 'postgres') => ({
  extends: true as const,
  test: {
    name: `e2e-${db}`,
    include: ['test/e2e/**/*.test.ts'],
    env: { EVALOPS_TEST_DB: db },
    testTimeout: 90_000,
    hookTimeout: 120_000,
  },
});

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    teardownTimeout: 20_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 } },
      integration('pglite'),
      integration('postgres'),
      e2e('pglite'),
      e2e('postgres'),
    ],
  },
});
