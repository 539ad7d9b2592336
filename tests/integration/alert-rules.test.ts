/**
 * deploy/prometheus/alerts.yml and deploy/grafana/*.json against the real gateway:
 * promtool checks and unit-tests every rule (alerts.test.yml: each fires on its pattern and
 * stays quiet short of it), and every metric the rules and the dashboard read is one the
 * gateway's /metrics really exposes (a renamed metric would otherwise silence an alert).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Deps } from '../../src/deps.js';
import { createApp } from '../../src/http/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestDeps } from '../helpers/deps.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROMETHEUS = path.join(ROOT, 'deploy/prometheus');
const GRAFANA = path.join(ROOT, 'deploy/grafana');
/** promtool from PROMTOOL or the PATH (Debian's `prometheus` package; .ci/run installs it). */
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

function promtool(args: string[], input?: string) {
  const result = spawnSync(PROMTOOL, args, { cwd: PROMETHEUS, input, encoding: 'utf8' });
  if (result.error) throw new Error(`cannot run ${PROMTOOL} (install Debian's prometheus package, or set PROMTOOL): ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

let database: TestDatabase;
let deps: Deps;

beforeAll(async () => {
  database = await createTestDatabase();
  deps = buildTestDeps({ DATABASE_URL: database.url, MOLLIE_API_KEY: 'test_unused', GOCARDLESS_ACCESS_TOKEN: 'unused', EVENT_SINK_URLS: 'http://127.0.0.1:9/', EVENT_SINK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }, { defaultMetrics: true });
});

afterAll(async () => {
  await deps?.close();
  await database?.drop();
});

/** Metric family names in PromQL text: gateway_* with histogram suffixes folded into their family. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(gateway_[a-z0-9_]+)/g)].map((match) => match[1]!.replace(/_(bucket|count|sum)$/, ''));
}

describe('Prometheus alert rules', () => {
  it('are valid and pass their unit tests', () => {
    const check = promtool(['check', 'rules', 'alerts.yml']);
    expect(check.status, check.output).toBe(0);
    const test = promtool(['test', 'rules', 'alerts.test.yml']);
    expect(test.status, test.output).toBe(0);
    expect(test.output).toContain('SUCCESS');
  });

  it('every alert has a unit test', () => {
    const rules = parseYaml(readFileSync(path.join(PROMETHEUS, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> };
    const tests = parseYaml(readFileSync(path.join(PROMETHEUS, 'alerts.test.yml'), 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname)));
    for (const { alert } of rules.groups.flatMap((group) => group.rules)) {
      expect(firing, `${alert} fires in a test`).toContain(alert);
      expect(quiet, `${alert} stays quiet in a test`).toContain(alert);
    }
  });

  it('read only metrics the gateway exposes, and the dashboard too', async () => {
    const exposition = await (await createApp(deps).request('/metrics')).text();
    const exposed = new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]!));
    const rules = readFileSync(path.join(PROMETHEUS, 'alerts.yml'), 'utf8');
    const dashboards = readdirSync(GRAFANA).filter((name) => name.endsWith('.json'));
    expect(dashboards.length).toBeGreaterThan(0);
    const used = new Set(metricNames(rules));
    for (const file of dashboards) {
      const dashboard = JSON.parse(readFileSync(path.join(GRAFANA, file), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
      for (const panel of dashboard.panels) {
        expect(panel.targets.length, panel.title).toBeGreaterThan(0);
        for (const target of panel.targets) for (const name of metricNames(target.expr)) used.add(name);
      }
    }
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) expect(exposed, `${name} is read by a rule or panel`).toContain(name);
  });

  it('the gateway’s own metrics pass promtool’s exposition check', async () => {
    const exposition = await (await createApp(deps).request('/metrics')).text();
    // prom-client's default nodejs_* gauges end in _total (its own naming, not ours).
    const ours = exposition.split('\n').filter((line) => /^(# (HELP|TYPE) )?gateway_/.test(line)).join('\n');
    expect(ours).toContain('gateway_http_request_duration_seconds');
    const lint = promtool(['check', 'metrics'], `${ours}\n`);
    expect(lint.status, lint.output).toBe(0);
  });
});
