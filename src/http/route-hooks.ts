import type { RouteOptions } from 'fastify';

type RouteHookName = 'onRequest' | 'preParsing' | 'preValidation' | 'onResponse';

/**
 * Adds a hook to one route as it is registered (from an `onRoute` hook), before or after the hooks
 * the route already has. Hooks given to the routes that need them, instead of hooks on the root app
 * that every request runs to find it has nothing to do.
 */
export function addRouteHook(route: RouteOptions, name: RouteHookName, hook: unknown, where: 'first' | 'last' = 'last'): void {
  const current = route[name] as unknown;
  const own: unknown[] = current === undefined ? [] : Array.isArray(current) ? current : [current];
  (route as unknown as Record<RouteHookName, unknown[]>)[name] = where === 'first' ? [hook, ...own] : [...own, hook];
}
