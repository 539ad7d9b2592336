import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { envSchema, parseEnv } from '../../src/config/env.js';

// Manifests are free-form YAML here; the schema check below is what types them.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The deployment files are checked offline: the Kubernetes manifests against the API's
 * OpenAPI schemas (bundled in kubernetes-models, compiled validators, no network), and all
 * of them against what the gateway actually reads and serves.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const K8S = path.join(ROOT, 'deploy/k8s');

interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

function loadManifests(): Manifest[] {
  return readdirSync(K8S)
    .filter((name) => name.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(K8S, file), 'utf8')).map((doc) => {
        expect(doc.errors, file).toEqual([]);
        return { ...(doc.toJS() as Omit<Manifest, 'file'>), file } as Manifest;
      }),
    );
}

/** kubernetes-models lays its classes out as <group>/<version>/<Kind> ("apps/v1/Deployment", "v1/Secret"). */
async function validateManifest(manifest: Record<string, unknown>): Promise<void> {
  const modulePath = `kubernetes-models/${String(manifest.apiVersion)}/${String(manifest.kind)}`;
  const module = (await import(modulePath)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = module[String(manifest.kind)];
  if (!Model) throw new Error(`no schema for ${modulePath}`);
  const { file: _file, ...data } = manifest;
  new Model(data).validate();
}

const byKind = (manifests: Manifest[], kind: string) => manifests.filter((m) => m.kind === kind);

describe('deploy/k8s manifests', () => {
  const manifests = loadManifests();

  it('has a Deployment, Services, a PodDisruptionBudget, a ConfigMap and a Secret', () => {
    expect(new Set(manifests.map((m) => m.kind))).toEqual(new Set(['Deployment', 'Service', 'PodDisruptionBudget', 'ConfigMap', 'Secret']));
  });

  it('every manifest validates against the Kubernetes schema of its kind', async () => {
    for (const manifest of manifests) {
      await expect(validateManifest(manifest), `${manifest.file}: ${manifest.kind} ${manifest.metadata.name}`).resolves.toBeUndefined();
    }
  });

  it('the validator rejects a broken Deployment (so the check above can fail)', async () => {
    const deployment = structuredClone(byKind(manifests, 'Deployment')[0]!) as Manifest & { spec: { replicas: unknown } };
    deployment.spec.replicas = 'two';
    await expect(validateManifest(deployment)).rejects.toThrow(/replicas must be integer/);
  });

  it('the Deployment probes the routes the gateway serves, drains before SIGTERM and runs as non-root', () => {
    const [deployment] = byKind(manifests, 'Deployment') as Array<Manifest & { spec: any }>;
    const pod = deployment!.spec.template.spec;
    const container = pod.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    const preStop: string[] = container.lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    // The grace period must cover the preStop sleep plus the gateway's own drain
    // (a sink delivery attempt is bounded by EVENT_SINK_TIMEOUT_MS, 15 s by default).
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(Number(preStop[1]) + 15 + 5);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    const portNames = container.ports.map((p: { name: string }) => p.name);
    expect(portNames).toEqual(expect.arrayContaining([container.readinessProbe.httpGet.port, container.livenessProbe.httpGet.port]));
  });

  it('the PodDisruptionBudget and the Services select the Deployment’s pods', () => {
    const [deployment] = byKind(manifests, 'Deployment') as Array<Manifest & { spec: any }>;
    const podLabels: Record<string, string> = deployment!.spec.template.metadata.labels;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    for (const pdb of byKind(manifests, 'PodDisruptionBudget') as Array<Manifest & { spec: any }>) {
      expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
      expect(pdb.spec.minAvailable).toBeLessThan(deployment!.spec.replicas);
    }
    for (const service of byKind(manifests, 'Service') as Array<Manifest & { spec: any }>) {
      expect(selects(service.spec.selector), service.metadata.name).toBe(true);
    }
  });

  it('the ConfigMap and Secret hold only variables the gateway reads, and together they parse', () => {
    const [config] = byKind(manifests, 'ConfigMap') as Array<Manifest & { data: Record<string, string> }>;
    const [secret] = byKind(manifests, 'Secret') as Array<Manifest & { stringData: Record<string, string> }>;
    const known = new Set(Object.keys(envSchema.shape));
    for (const name of [...Object.keys(config!.data), ...Object.keys(secret!.stringData)]) expect(known, name).toContain(name);
    // Credentials live in the Secret, never in the ConfigMap.
    for (const name of Object.keys(config!.data)) expect(name).not.toMatch(/TOKEN|SECRET|KEY|PASSWORD|DATABASE_URL/);
    expect(() => parseEnv({ ...config!.data, ...secret!.stringData })).not.toThrow();
    // Both are mounted as the container's environment.
    const [deployment] = byKind(manifests, 'Deployment') as Array<Manifest & { spec: any }>;
    const envFrom = deployment!.spec.template.spec.containers[0].envFrom;
    expect(envFrom).toEqual(expect.arrayContaining([{ configMapRef: { name: config!.metadata.name } }, { secretRef: { name: secret!.metadata.name } }]));
  });
});

describe('docker-compose.yml', () => {
  const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { healthcheck?: { test: string[] }; depends_on?: Record<string, { condition: string }>; volumes?: string[] }>;
    volumes?: Record<string, unknown>;
  };

  it('health-checks every service, and the gateway waits for all of them to be healthy', () => {
    for (const [name, service] of Object.entries(compose.services)) expect(service.healthcheck?.test, name).toBeDefined();
    const dependsOn = compose.services.gateway!.depends_on!;
    expect(Object.keys(dependsOn).sort()).toEqual(Object.keys(compose.services).filter((name) => name !== 'gateway').sort());
    for (const [name, dependency] of Object.entries(dependsOn)) expect(dependency.condition, name).toBe('service_healthy');
  });

  it('keeps Postgres on a named volume', () => {
    const mount = compose.services.postgres!.volumes!.find((volume) => volume.endsWith(':/var/lib/postgresql/data'));
    const volumeName = mount!.split(':')[0]!;
    expect(compose.volumes).toHaveProperty(volumeName);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const lastStage = instructions.slice(instructions.findLastIndex((line) => line.startsWith('FROM ')));

  it('builds in one stage and runs from another, as a non-root user with a HEALTHCHECK', () => {
    expect(instructions.filter((line) => line.startsWith('FROM ')).length).toBeGreaterThanOrEqual(2);
    const user = lastStage.findLast((line) => line.startsWith('USER '));
    expect(user).toBeDefined();
    expect(user!.split(/\s+/)[1]).not.toMatch(/^(root|0)$/);
    expect(lastStage.some((line) => line.startsWith('HEALTHCHECK ') && line.includes('/healthz'))).toBe(true);
    // The runtime stage installs nothing: no compiler, no dev dependencies.
    expect(lastStage.some((line) => /\bnpm (ci|install)\b/.test(line))).toBe(false);
  });

  it('has a .dockerignore that keeps local state out of the build context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', 'dist', '.data', '.env']));
  });
});
