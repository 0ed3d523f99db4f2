// Starts cmd/llmgate for the acceptance tests: on the repository's demo config (mock models),
// a fresh table on DynamoDB Local, a free loopback port and a known master key.
//
// DynamoDB Local: LLMGATE_DYNAMODB_ENDPOINT when set (make acceptance sets it), else one
// started here with scripts/dynamodb-local.sh and stopped with the gateway.
// The binary: LLMGATE_BIN when set, else built here with `go build`.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export const root = resolve(import.meta.dirname, '..');
export const masterKey = 'sk-acceptance-master-key';

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

async function waitReady(url, child, what) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer ${url} within 30s`);
}

/**
 * Starts llmgate and returns { baseURL, stop }. stop() ends every process this started.
 */
export async function startGateway() {
  const dir = mkdtempSync(join(tmpdir(), 'llmgate-acceptance-'));
  const stops = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    let endpoint = process.env.LLMGATE_DYNAMODB_ENDPOINT;
    if (!endpoint) {
      const port = await freePort();
      const pid = Number(execFileSync(join(root, 'scripts', 'dynamodb-local.sh'), ['start', String(port)], { encoding: 'utf8' }).trim());
      stops.push(() => process.kill(pid));
      endpoint = `http://127.0.0.1:${port}`;
    }
    let bin = process.env.LLMGATE_BIN;
    if (!bin) {
      bin = join(dir, 'llmgate');
      execFileSync('go', ['build', '-o', bin, './cmd/llmgate'], { cwd: root, stdio: 'inherit' });
    }
    const port = await freePort();
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('LLMGATE_') || k.startsWith('LITELLM_')) delete env[k];
    Object.assign(env, {
      LLMGATE_DYNAMODB_ENDPOINT: endpoint,
      LLMGATE_TABLE: `acceptance-${randomBytes(4).toString('hex')}`,
      LITELLM_MASTER_KEY: masterKey,
    });
    const child = spawn(bin, ['--config', join(root, 'config.demo.yaml'), '--port', String(port)], {
      env,
      stdio: ['ignore', 'ignore', process.env.ACCEPTANCE_LOG ? 'inherit' : 'ignore'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    stops.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    });
    const baseURL = `http://127.0.0.1:${port}`;
    await waitReady(`${baseURL}/health/liveliness`, child, 'llmgate');
    return { baseURL, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Creates a virtual key over HTTP with the master key, as an admin script would, and returns
 * the response body (its `key` is the secret).
 */
export async function generateKey(baseURL, params) {
  const res = await fetch(`${baseURL}/key/generate`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${masterKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(params),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`/key/generate: status ${res.status}: ${JSON.stringify(body)}`);
  return body;
}
