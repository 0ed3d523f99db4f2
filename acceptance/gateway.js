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
 * Builds a Go command of the repository (./cmd/NAME) into dir and returns its path.
 */
function buildCommand(name, dir) {
  const bin = join(dir, name);
  execFileSync('go', ['build', '-o', bin, `./cmd/${name}`], { cwd: root, stdio: 'inherit' });
  return bin;
}

/**
 * Starts cmd/fakeupstream (the fake Anthropic and OpenAI upstreams on one port) and returns
 * { url, stop }.
 */
export async function startFakeUpstream() {
  const dir = mkdtempSync(join(tmpdir(), 'llmgate-fake-'));
  const child = spawn(buildCommand('fakeupstream', dir), [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const url = await new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
      const i = out.indexOf('\n');
      if (i >= 0) ok(out.slice(0, i).trim());
    });
    child.once('exit', (code) => fail(new Error(`fakeupstream exited with ${code}`)));
  }).catch(async (err) => {
    await stop();
    throw err;
  });
  return { url, stop };
}

/**
 * Starts llmgate and returns { baseURL, stop, endpoint, table }: its URL, a stop() that ends
 * every process this started, and the DynamoDB endpoint and table it uses. config is the config file to serve (default: the repository's demo config).
 */
export async function startGateway({ config = join(root, 'config.demo.yaml') } = {}) {
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
    const bin = process.env.LLMGATE_BIN || buildCommand('llmgate', dir);
    const port = await freePort();
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('LLMGATE_') || k.startsWith('LITELLM_')) delete env[k];
    Object.assign(env, {
      LLMGATE_DYNAMODB_ENDPOINT: endpoint,
      LLMGATE_TABLE: `acceptance-${randomBytes(4).toString('hex')}`,
      LITELLM_MASTER_KEY: masterKey,
    });
    const child = spawn(bin, ['--config', config, '--port', String(port)], {
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
    return { baseURL, stop, endpoint, table: env.LLMGATE_TABLE };
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
