// app.js: the UI's entry point. Importing a page module registers its
// routes; start() renders the current URL.
import { start } from './lib.js';
import './pages/experiments.js';
import './pages/runs.js';
import './pages/run.js';
import './pages/traces.js';
import './pages/trace.js';
import './pages/logged-models.js';
import './pages/compare.js';
import './pages/models.js';
import './pages/prompts.js';
import './pages/account.js';
import './pages/mlflow-links.js';

start();
