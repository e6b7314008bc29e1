import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { DASHBOARD_PAGES, type DashboardPath } from '../../pages.ts';
import { KeyForm } from './components/key-form.tsx';
import { ComparePage } from './pages/compare.tsx';
import { DatasetPage, DatasetsPage } from './pages/datasets.tsx';
import { EvaluationPage } from './pages/evaluation.tsx';
import { EvaluationsPage } from './pages/evaluations.tsx';
import { JobPage } from './pages/job.tsx';
import { JobsPage } from './pages/jobs.tsx';
import { NotFoundPage } from './pages/not-found.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { PromptPage, PromptsPage } from './pages/prompts.tsx';

/** The component of each page URL (typed by the list the server serves, so none is missing). */
const PAGE_COMPONENTS: Record<DashboardPath, ComponentType<any>> = {
  '/': OverviewPage,
  '/jobs': JobsPage,
  '/jobs/:id': JobPage,
  '/evaluations': EvaluationsPage,
  '/evaluations/:id': EvaluationPage,
  '/compare': ComparePage,
  '/prompts': PromptsPage,
  '/prompts/:name': PromptPage,
  '/datasets': DatasetsPage,
  '/datasets/:id': DatasetPage,
};

const NAV = DASHBOARD_PAGES.filter((page) => page.nav).map((page) => ({ href: page.path, label: page.title }));

function Header() {
  const { path } = useLocation();
  const [keyOpen, setKeyOpen] = useState(false);
  const [needed, setNeeded] = useState(false);
  useEffect(() => {
    const onUnauthorized = () => {
      setNeeded(true);
      setKeyOpen(true);
    };
    window.addEventListener('evalops:unauthorized', onUnauthorized);
    return () => window.removeEventListener('evalops:unauthorized', onUnauthorized);
  }, []);
  const active = (href: string) => (href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`));
  return (
    <header class="top">
      <a href="/" class="brand">
        evalops
      </a>
      <nav>
        {NAV.map((item) => (
          <a key={item.href} href={item.href} class={active(item.href) ? 'active' : ''}>
            {item.label}
          </a>
        ))}
      </nav>
      <button type="button" class="key-button" onClick={() => setKeyOpen(!keyOpen)}>
        API key
      </button>
      {keyOpen ? (
        <KeyForm
          needed={needed}
          onClose={() => {
            setKeyOpen(false);
            setNeeded(false);
          }}
        />
      ) : null}
    </header>
  );
}

/** Sets the tab title from the page list the server also serves. */
function TitleSync() {
  const { path } = useLocation();
  useEffect(() => {
    const page = DASHBOARD_PAGES.find((p) => matches(p.path, path));
    document.title = page ? `${page.title} · evalops` : 'evalops';
  }, [path]);
  return null;
}

function matches(pattern: string, path: string): boolean {
  const a = pattern.split('/');
  const b = path.split('/');
  return a.length === b.length && a.every((seg, i) => seg.startsWith(':') || seg === b[i]);
}

export function App() {
  return (
    <LocationProvider>
      <Header />
      <TitleSync />
      <main>
        <Router>
          {DASHBOARD_PAGES.map((page) => (
            <Route key={page.path} path={page.path} component={PAGE_COMPONENTS[page.path]} />
          ))}
          <Route default component={NotFoundPage} />
        </Router>
      </main>
    </LocationProvider>
  );
}
