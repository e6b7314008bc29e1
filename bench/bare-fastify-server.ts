import Fastify from 'fastify';

/**
 * The baseline of the health benchmark: a bare Fastify hello world (no logger, no hooks, no
 * plugins) answering GET /health with {"status":"ok"}, as its own process on HOST:PORT.
 */
const app = Fastify({ logger: false });
app.get('/health', async () => ({ status: 'ok' }));

const port = Number(process.env.PORT ?? 0);
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port });

const stop = () => void app.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
