// Acceptance: coding agents and the Anthropic / OpenAI SDKs through llmgate's /v1/messages and
// /v1/responses, each through a virtual key, against the in-repo fake upstreams
// (cmd/fakeupstream): @anthropic-ai/sdk and openai on the pass-through deployments (Messages
// also to Claude on a Bedrock deployment, in Anthropic's format over InvokeModel), and the
// real Claude Code (`claude -p`) and Codex CLI (`codex exec`) on both a pass-through and a
// translated deployment (Claude Code on an OpenAI chat deployment and on Bedrock, Codex on a
// chat-only one).
// Every test checks the key's spend against its spend logs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { generateKey, masterKey, startFakeUpstream, startGateway } from './gateway.js';

const bin = resolve(import.meta.dirname, 'node_modules', '.bin');
const anthropicAnswer = 'Hello from the fake Anthropic upstream.';
const responsesAnswer = 'Hello from the fake Responses upstream.';
const chatAnswer = 'tok tok tok tok tok tok tok tok';

let fake;
let gw;
let dir;
before(async () => {
  fake = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'llmgate-agents-'));
  const config = join(dir, 'config.yaml');
  // claude-sonnet-4-5 and gpt-5 pass through to the fakes in their own format, and
  // claude-on-bedrock goes in Anthropic's format over Bedrock's InvokeModel (SigV4-signed);
  // claude-via-chat (OpenAI chat) and gpt-5-chat (a chat-only vLLM server) are served by
  // translation.
  writeFileSync(config, `
model_list:
  - model_name: claude-sonnet-4-5
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_base: "${fake.url}", api_key: sk-fake-anthropic}
  - model_name: claude-on-bedrock
    litellm_params: {model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0, api_base: "${fake.url}", aws_region_name: us-east-1, aws_access_key_id: AKIDFAKE, aws_secret_access_key: fake-secret}
  - model_name: claude-via-chat
    litellm_params: {model: openai/gpt-4o-mini, api_base: "${fake.url}/v1", api_key: sk-fake-openai}
  - model_name: gpt-5
    litellm_params: {model: openai/gpt-5, api_base: "${fake.url}/v1", api_key: sk-fake-openai}
  - model_name: gpt-5-chat
    litellm_params: {model: hosted_vllm/llama, api_base: "${fake.url}/v1"}
    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
`);
  gw = await startGateway({ config });
});
after(async () => {
  await gw?.stop();
  await fake?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function admin(path, init = {}) {
  const res = await fetch(`${gw.baseURL}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${masterKey}`, 'Content-Type': 'application/json' },
  });
  const body = await res.json();
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

// assertCharged waits until the key's spend equals the sum of its spend logs (the gateway
// settles after the answer is out), then checks there are calls logs of the route's call
// type and the key was charged.
async function assertCharged(key, { calls, callType }) {
  let spend;
  let logs;
  for (let i = 0; i < 100; i++) {
    spend = (await admin(`/key/info?key=${encodeURIComponent(key)}`)).info.spend;
    logs = await admin(`/spend/logs?api_key=${encodeURIComponent(key)}&summarize=false`);
    const total = logs.reduce((s, l) => s + l.spend, 0);
    if (logs.length >= calls && Math.abs(total - spend) < 1e-12) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(logs.length, calls, `spend logs: ${JSON.stringify(logs)}`);
  assert.ok(spend > 0, `the key was not charged: spend ${spend}`);
  const total = logs.reduce((s, l) => s + l.spend, 0);
  assert.ok(Math.abs(total - spend) < 1e-12, `key spend ${spend} != sum of its spend logs ${total}`);
  for (const l of logs) assert.equal(l.call_type, callType);
}

const weatherTool = {
  name: 'get_weather',
  description: 'The weather of a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('@anthropic-ai/sdk through /v1/messages', () => {
  const client = (apiKey) => new Anthropic({ apiKey, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 });

  test('messages.create answers and charges the key', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    const msg = await client(key).messages.create({
      model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }],
    });
    assert.equal(msg.type, 'message');
    assert.equal(msg.content[0].text, anthropicAnswer);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0, JSON.stringify(msg.usage));
    await assertCharged(key, { calls: 1, callType: 'anthropic_messages' });
  });

  test('messages.stream sends the event sequence and the final message', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    const stream = client(key).messages.stream({
      model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }],
    });
    const types = [];
    for await (const ev of stream) types.push(ev.type);
    const final = await stream.finalMessage();
    assert.equal(final.content[0].text, anthropicAnswer);
    assert.equal(types[0], 'message_start');
    assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    assert.ok(types.includes('content_block_start') && types.includes('content_block_delta'), types.join(' '));
    await assertCharged(key, { calls: 1, callType: 'anthropic_messages' });
  });

  test('a tool-use round trip, on the pass-through and on a translated deployment', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    const first = await client(key).messages.create({
      model: 'claude-sonnet-4-5', max_tokens: 256, tools: [weatherTool],
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.deepEqual(use.input, { city: 'Paris' });
    const messages = [
      { role: 'user', content: 'What is the weather in Paris?' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21°C' }] },
    ];
    const second = await client(key).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 256, tools: [weatherTool], messages });
    assert.equal(second.content[0].text, 'The tool said: sunny, 21°C');
    // The same conversation on an OpenAI chat deployment: tool_use and tool_result become
    // chat tool calls and a tool message.
    const translated = await client(key).messages.create({ model: 'claude-via-chat', max_tokens: 256, tools: [weatherTool], messages });
    assert.equal(translated.content[0].text, chatAnswer + ' ');
    await assertCharged(key, { calls: 3, callType: 'anthropic_messages' });
  });

  test('messages.create and messages.stream on Bedrock, in Anthropic\'s format', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    const msg = await client(key).messages.create({
      model: 'claude-on-bedrock', max_tokens: 256,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: 'Hello' }],
    }, { headers: { 'anthropic-beta': 'prompt-caching-2024-07-31' } });
    assert.equal(msg.type, 'message');
    assert.equal(msg.content[0].text, anthropicAnswer);
    assert.equal(msg.model, 'claude-sonnet-4-5-20250929-v1:0');
    assert.equal(msg.usage.cache_read_input_tokens, 5, JSON.stringify(msg.usage));
    const stream = client(key).messages.stream({
      model: 'claude-on-bedrock', max_tokens: 256, tools: [weatherTool],
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    });
    const types = [];
    for await (const ev of stream) types.push(ev.type);
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content.find((b) => b.type === 'tool_use').input, { city: 'Paris' });
    assert.equal(types[0], 'message_start');
    assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
    await assertCharged(key, { calls: 2, callType: 'anthropic_messages' });
  });

  test('countTokens counts without charging; a refusal is an Anthropic error', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10, models: ['claude-sonnet-4-5'] });
    const n = await client(key).messages.countTokens({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hello there' }] });
    assert.ok(n.input_tokens > 0, JSON.stringify(n));
    const err = await client(key).messages.create({ model: 'gpt-5', max_tokens: 10, messages: [{ role: 'user', content: 'Hello' }] })
      .then(() => assert.fail('a model outside the key was served'), (e) => e);
    assert.ok(err instanceof Anthropic.AuthenticationError, `${err}`);
    assert.equal(err.error.type, 'error');
    const info = await admin(`/key/info?key=${encodeURIComponent(key)}`);
    assert.equal(info.info.spend, 0);
    const logs = await admin(`/spend/logs?api_key=${encodeURIComponent(key)}&summarize=false`);
    assert.equal(logs.reduce((s, l) => s + l.spend, 0), info.info.spend, `spend logs: ${JSON.stringify(logs)}`);
  });
});

describe('openai SDK through /v1/responses', () => {
  const client = (apiKey) => new OpenAI({ apiKey, baseURL: `${gw.baseURL}/v1`, maxRetries: 0, timeout: 20_000 });
  const fn = { type: 'function', name: 'get_weather', description: 'The weather of a city', parameters: weatherTool.input_schema };

  test('responses.create answers and charges the key', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    const res = await client(key).responses.create({ model: 'gpt-5', input: 'Hello', store: false });
    assert.equal(res.object, 'response');
    assert.equal(res.output_text, responsesAnswer);
    assert.equal(res.usage.input_tokens, 30);
    await assertCharged(key, { calls: 1, callType: 'aresponses' });
  });

  test('responses.stream sends the semantic events, on the pass-through and translated', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    for (const [model, answer] of [['gpt-5', responsesAnswer], ['gpt-5-chat', chatAnswer + ' ']]) {
      const stream = client(key).responses.stream({ model, input: 'Hello' });
      const types = [];
      let text = '';
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
      }
      const final = await stream.finalResponse();
      assert.equal(text, answer, model);
      assert.equal(final.output_text, answer, model);
      assert.equal(types[0], 'response.created', model);
      assert.equal(types.at(-1), 'response.completed', model);
      assert.ok(types.includes('response.output_item.done'), types.join(' '));
      assert.ok(final.usage.input_tokens > 0, JSON.stringify(final.usage));
    }
    await assertCharged(key, { calls: 2, callType: 'aresponses' });
  });

  test('a function-call round trip, on the pass-through and on a chat-only deployment', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    const first = await client(key).responses.create({ model: 'gpt-5', input: 'What is the weather in Paris?', tools: [fn] });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    const input = [
      { role: 'user', content: 'What is the weather in Paris?' },
      call,
      { type: 'function_call_output', call_id: call.call_id, output: 'sunny' },
    ];
    const second = await client(key).responses.create({ model: 'gpt-5', input, tools: [fn] });
    assert.equal(second.output_text, 'The tool said: sunny');
    const translated = await client(key).responses.create({ model: 'gpt-5-chat', input, tools: [fn] });
    assert.equal(translated.output_text, chatAnswer + ' ');
    const refused = await client(key).responses.create({ model: 'gpt-5-chat', input: 'more', previous_response_id: second.id })
      .then(() => assert.fail('previous_response_id on a chat deployment was served'), (e) => e);
    assert.equal(refused.status, 400);
    assert.match(refused.message, /previous_response_id/);
    // The refusal (a response of another model) comes before any reservation: no spend log.
    await assertCharged(key, { calls: 3, callType: 'aresponses' });
  });
});

// run runs an agent CLI headless in a fresh HOME and resolves { code, stdout, stderr }.
function run(cmd, args, env) {
  const home = mkdtempSync(join(tmpdir(), 'llmgate-agent-home-'));
  mkdirSync(join(home, 'codex'));
  const base = { PATH: process.env.PATH, HOME: home, CODEX_HOME: join(home, 'codex'), LANG: 'C.UTF-8' };
  if (env.codexConfig) writeFileSync(join(home, 'codex', 'config.toml'), env.codexConfig);
  delete env.codexConfig;
  return new Promise((ok) => {
    // stdin is closed: Codex reads more of its prompt from an open one.
    const child = spawn(join(bin, cmd), args, { env: { ...base, ...env }, cwd: home, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => { stderr += b; });
    child.on('close', (code, signal) => {
      rmSync(home, { recursive: true, force: true });
      ok({ code: code ?? signal, stdout, stderr });
    });
  });
}

function claude(key, model) {
  return run('claude', ['-p', 'say hi', '--model', model], {
    ANTHROPIC_BASE_URL: gw.baseURL, ANTHROPIC_AUTH_TOKEN: key,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1',
  });
}

function codex(key, model) {
  return run('codex', ['exec', '--skip-git-repo-check', '-m', model, 'say hi'], {
    LLMGATE_KEY: key,
    codexConfig: `model_provider = "llmgate"
[model_providers.llmgate]
name = "llmgate"
base_url = "${gw.baseURL}/v1"
env_key = "LLMGATE_KEY"
wire_api = "responses"
`,
  });
}

// exhaust lowers the key's budget below what it has spent, as an admin would mid-session.
async function exhaust(key) {
  await admin('/key/update', { method: 'POST', body: JSON.stringify({ key, max_budget: 1e-9 }) });
}

describe('the real coding agents through llmgate', () => {
  test('Claude Code on the Anthropic pass-through, on Bedrock and on an OpenAI chat deployment; then an exhausted budget', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    const runs = [['claude-sonnet-4-5', anthropicAnswer], ['claude-on-bedrock', anthropicAnswer], ['claude-via-chat', chatAnswer]];
    for (const [model, answer] of runs) {
      const r = await claude(key, model);
      assert.equal(r.code, 0, `claude on ${model}: ${r.stderr}\n${r.stdout}`);
      assert.equal(r.stdout.trim(), answer, `claude on ${model}`);
    }
    await assertCharged(key, { calls: runs.length, callType: 'anthropic_messages' });
    await exhaust(key);
    const r = await claude(key, 'claude-sonnet-4-5');
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Budget has been exceeded/);
  });

  test('Codex on the Responses pass-through and on a chat-only deployment; then an exhausted budget', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 10 });
    for (const [model, answer] of [['gpt-5', responsesAnswer], ['gpt-5-chat', chatAnswer]]) {
      const r = await codex(key, model);
      assert.equal(r.code, 0, `codex on ${model}: ${r.stderr}\n${r.stdout}`);
      assert.equal(r.stdout.trim(), answer, `codex on ${model}`);
      assert.doesNotMatch(r.stderr, /ERROR/, `codex on ${model}`);
    }
    await assertCharged(key, { calls: 2, callType: 'aresponses' });
    await exhaust(key);
    const r = await codex(key, 'gpt-5');
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Budget has been exceeded/);
  });
});
