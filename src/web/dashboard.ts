import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { AppError } from '../errors.ts';
import { DASHBOARD_ASSETS_PREFIX, DASHBOARD_PAGES } from './pages.ts';

/**
 * Where `npm run build` puts the dashboard (vite, src/web/client/vite.config.ts). Two levels above
 * this file is the package root both from src/web/ and from dist/web/.
 */
export const DASHBOARD_BUILD_DIR = path.join(fileURLToPath(new URL('../../', import.meta.url)), 'dist', 'web', 'public');

/**
 * The dashboard: its page URLs answer the page shell, `/assets/*` the built scripts and styles
 * (content-hashed names, cached for a year). Both are public (src/http/auth.ts routeAccess): they hold
 * no data; the page calls the API with the key entered in it, like any client. Every other URL stays
 * the API's.
 */
export const dashboardRoutes: FastifyPluginAsync<{ buildDir?: string }> = async (app, options) => {
  const buildDir = options.buildDir ?? DASHBOARD_BUILD_DIR;
  const indexFile = path.join(buildDir, 'index.html');
  const schema = { hide: true };

  for (const page of DASHBOARD_PAGES) {
    app.get(page.path, { schema }, async (_request, reply) => {
      // Read at each request (a few hundred bytes): a rebuild while the server runs renames the
      // assets, and a shell cached at start would point at files that are gone.
      const shell = await readFile(indexFile).catch(() => undefined);
      if (!shell) throw new AppError('UNAVAILABLE', `the dashboard is not built (no ${indexFile}): run npm run build`);
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(shell);
    });
  }

  const assetsDir = path.join(buildDir, DASHBOARD_ASSETS_PREFIX);
  if (existsSync(assetsDir)) {
    await app.register(fastifyStatic, {
      root: assetsDir,
      prefix: DASHBOARD_ASSETS_PREFIX,
      index: false,
      decorateReply: false,
      immutable: true,
      maxAge: '365d',
      schemaHide: true,
    });
  }
};
