/**
 * The dashboard's pages: the URL patterns the client's router renders and the server answers with
 * the page shell (index.html). One list, so the two cannot disagree; every other URL stays the API's
 * (an unknown one is a 404 JSON answer, as before).
 */
export const DASHBOARD_PAGES = [
  { path: '/', title: 'Overview', nav: true },
  { path: '/jobs', title: 'Jobs', nav: true },
  { path: '/jobs/:id', title: 'Job', nav: false },
  { path: '/evaluations', title: 'Evaluations', nav: true },
  { path: '/evaluations/:id', title: 'Evaluation run', nav: false },
  { path: '/compare', title: 'Compare', nav: true },
  { path: '/prompts', title: 'Prompts', nav: true },
  { path: '/prompts/:name', title: 'Prompt', nav: false },
  { path: '/datasets', title: 'Datasets', nav: true },
  { path: '/datasets/:id', title: 'Dataset snapshot', nav: false },
] as const;

/** One of the page URL patterns. */
export type DashboardPath = (typeof DASHBOARD_PAGES)[number]['path'];

/** Where the built assets (scripts, styles) are served from. */
export const DASHBOARD_ASSETS_PREFIX = '/assets/';
