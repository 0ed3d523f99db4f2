// Acceptance: the official openai SDK for Node, used as an application would, against
// cmd/llmgate with DynamoDB Local and the demo config's mock models. Every refusal asserts the
// status, error class and error type an SDK user sees.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { generateKey, masterKey, startGateway } from './gateway.js';

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  await gw?.stop();
});

// client returns an SDK client for the key. Retries are off so that a refusal reaches the
// test as the first answer, not after the SDK's backoff.
function client(apiKey) {
  return new OpenAI({ apiKey, baseURL: `${gw.baseURL}/v1`, maxRetries: 0, timeout: 20_000 });
}

const hello = [{ role: 'user', content: 'Hello there' }];

// refusal runs call, expects it to throw an APIError and returns it.
async function refusal(call) {
  try {
    await call();
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  assert.fail('the call succeeded; want a refusal');
}

describe('llmgate with the openai SDK', () => {
  test('key generation over HTTP returns a usable virtual key', async () => {
    const k = await generateKey(gw.baseURL, { models: ['demo'], max_budget: 10, key_alias: 'acceptance-generate' });
    assert.match(k.key, /^sk-[A-Za-z0-9_-]{22,}$/);
    assert.equal(k.key_alias, 'acceptance-generate');
    assert.equal(k.max_budget, 10);
    assert.deepEqual(k.models, ['demo']);
    assert.equal(k.key_name, `sk-...${k.key.slice(-4)}`);
    const res = await client(k.key).chat.completions.create({ model: 'demo', messages: hello });
    assert.equal(res.choices[0].message.content, 'Echo: Hello there');
  });

  test('chat completion answers with content, usage and the cost header', async () => {
    const { key } = await generateKey(gw.baseURL, {});
    const { data, response } = await client(key)
      .chat.completions.create({ model: 'demo', messages: hello })
      .withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices.length, 1);
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.equal(data.choices[0].message.content, 'Echo: Hello there');
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.ok(data.usage.prompt_tokens > 0, `prompt_tokens ${data.usage.prompt_tokens}`);
    assert.ok(data.usage.completion_tokens > 0, `completion_tokens ${data.usage.completion_tokens}`);
    const cost = Number(response.headers.get('x-litellm-response-cost'));
    assert.ok(cost > 0, `x-litellm-response-cost ${response.headers.get('x-litellm-response-cost')}`);
  });

  test('streaming delivers the content chunk by chunk and the usage at the end', async () => {
    const { key } = await generateKey(gw.baseURL, {});
    const stream = await client(key).chat.completions.create({
      model: 'demo',
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta?.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, 'Echo: Hello there');
    assert.equal(finish, 'stop');
    assert.ok(chunks >= 3, `got ${chunks} chunks, want the content split over several`);
    assert.ok(usage && usage.completion_tokens > 0, `usage ${JSON.stringify(usage)}`);
  });

  test('embeddings return one vector per input (the SDK asks for base64)', async () => {
    const { key } = await generateKey(gw.baseURL, {});
    const res = await client(key).embeddings.create({ model: 'demo-embed', input: ['first', 'second'] });
    assert.equal(res.object, 'list');
    assert.equal(res.data.length, 2);
    for (const [i, d] of res.data.entries()) {
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, 16);
      assert.ok(d.embedding.every(Number.isFinite), 'embedding values are numbers');
    }
    assert.notDeepEqual(res.data[0].embedding, res.data[1].embedding);
    assert.ok(res.usage.prompt_tokens > 0);
  });

  test('a key whose budget cannot pay for the call is refused with 400 budget_exceeded', async () => {
    const { key } = await generateKey(gw.baseURL, { max_budget: 0.0000001 });
    const err = await refusal(() => client(key).chat.completions.create({ model: 'demo', messages: hello }));
    assert.ok(err instanceof OpenAI.BadRequestError, `got ${err.constructor.name}`);
    assert.equal(err.status, 400);
    assert.equal(err.type, 'budget_exceeded');
  });

  test('a key with rpm_limit 1 gets 429 on its second call in the minute', async () => {
    const { key } = await generateKey(gw.baseURL, { rpm_limit: 1 });
    const c = client(key);
    await c.chat.completions.create({ model: 'demo', messages: hello });
    const err = await refusal(() => c.chat.completions.create({ model: 'demo', messages: hello }));
    assert.ok(err instanceof OpenAI.RateLimitError, `got ${err.constructor.name}`);
    assert.equal(err.status, 429);
    assert.equal(err.type, 'throttling_error');
    assert.ok(Number(err.headers.get('retry-after')) > 0, `retry-after ${err.headers.get('retry-after')}`);
  });

  test('a key limited to demo is refused demo-embed with 401 key_model_access_denied', async () => {
    const { key } = await generateKey(gw.baseURL, { models: ['demo'] });
    const err = await refusal(() => client(key).embeddings.create({ model: 'demo-embed', input: 'x' }));
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err.constructor.name}`);
    assert.equal(err.status, 401);
    assert.equal(err.type, 'key_model_access_denied');
    assert.equal(err.param, 'model');
  });

  test('an unknown key is refused with 401', async () => {
    const err = await refusal(() => client('sk-not-a-real-key-000000000000').chat.completions.create({ model: 'demo', messages: hello }));
    assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err.constructor.name}`);
    assert.equal(err.status, 401);
    assert.equal(err.type, 'token_not_found_in_db');
  });

  test('the master key may call any model', async () => {
    const res = await client(masterKey).chat.completions.create({ model: 'demo', messages: hello });
    assert.equal(res.choices[0].message.content, 'Echo: Hello there');
  });
});
