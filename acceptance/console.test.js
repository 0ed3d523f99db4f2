// Browser test of the admin console: headless Chromium (Debian's `chromium`, driven by
// playwright-core) against cmd/llmgate on DynamoDB Local. One browser for every step. The
// screenshots it saves in docs/ are the README's pictures.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { chromium } from 'playwright-core';
import { masterKey, root, startGateway } from './gateway.js';

const browserPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const seedKeys = 10_000;

let gw, browser, page;
const problems = [];

async function admin(path, body) {
  const res = await fetch(`${gw.baseURL}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { Authorization: `Bearer ${masterKey}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const out = await res.json();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(out)}`);
  return out;
}

// seed writes n keys into the gateway's table in batched transactions (seedkeys, with the
// store's own code): 10,000 /key/generate calls take minutes on DynamoDB Local.
function seed(n) {
  execFileSync('go', ['run', './acceptance/seedkeys', '-endpoint', gw.endpoint, '-table', gw.table, '-n', String(n)],
    { cwd: root, stdio: 'inherit' });
}

// textOf waits until the locator's text matches re and returns it; on timeout it fails with
// the text it last saw.
async function textOf(locator, re, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let text = '';
  for (;;) {
    text = await locator.first().textContent({ timeout: 1000 }).catch(() => '(absent)');
    if (re.test(text)) return text;
    if (Date.now() > deadline) assert.fail(`waited for ${re}, saw ${JSON.stringify(text)}`);
    await page.waitForTimeout(100);
  }
}

const shot = (name) => page.screenshot({ path: join(root, 'docs', `console-${name}.png`) });

async function signIn(key) {
  await page.goto(`${gw.baseURL}/ui`);
  assert.match(page.url(), /\/ui\/$/);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#nav').waitFor();
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
}

let teamA, teamB, alice, configDir;
before(async () => {
  assert.ok(existsSync(browserPath), `no browser at ${browserPath}: apt-get install -y chromium`);
  // The demo config with models stored in DynamoDB, so the models page can add and edit them.
  configDir = mkdtempSync(join(tmpdir(), 'llmgate-console-'));
  const config = join(configDir, 'config.yaml');
  // A proxy-wide budget, which the overview meters.
  writeFileSync(config, readFileSync(join(root, 'config.demo.yaml'), 'utf8')
    .replace('general_settings:\n', 'litellm_settings:\n  max_budget: 50\n\ngeneral_settings:\n  store_model_in_db: true\n'));
  gw = await startGateway({ config });
  browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Script errors and Content-Security-Policy violations both reach the console.
  page.on('pageerror', (err) => problems.push(String(err)));
  page.on('console', (msg) => { if (msg.type() === 'error' && !/status of 4\d\d/.test(msg.text())) problems.push(msg.text()); });
  teamA = (await admin('/team/new', { team_alias: 'research', max_budget: 20 })).team_id;
  teamB = (await admin('/team/new', { team_alias: 'billing', max_budget: 5 })).team_id;
  alice = await admin('/user/new', { user_id: 'alice', user_role: 'internal_user' });
  await admin('/team/member_add', { team_id: teamA, member: [{ user_id: 'alice', role: 'admin' }] });
  seed(seedKeys);
});

after(async () => {
  await browser?.close();
  await gw?.stop();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

const sdk = (apiKey) => new OpenAI({ apiKey, baseURL: `${gw.baseURL}/v1`, maxRetries: 0, timeout: 20_000 });
let key;

test('a wrong key is refused at sign-in and no key ends up in the URL', async () => {
  await page.goto(`${gw.baseURL}/ui/`);
  await page.getByLabel('API key').fill('sk-not-a-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('That key is not valid.').waitFor();
  assert.doesNotMatch(page.url(), /sk-/);
});

test('the master key creates a key, shown once; the openai SDK calls with it', async () => {
  await signIn(masterKey);
  await textOf(page.locator('#who'), /^master key · proxy_admin$/);
  await textOf(page.locator('.stat').filter({ hasText: 'Keys' }).locator('.value'), /^1,000\+$/);
  await page.getByRole('link', { name: 'Keys' }).click();
  await textOf(page.locator('#key-page'), /^Page 1 · 25 keys$/);
  await page.getByRole('button', { name: 'Create key' }).click();
  const dlg = page.locator('dialog');
  await dlg.getByLabel('Alias unique name').fill('browser-key');
  await dlg.getByLabel('Team', { exact: true }).fill(teamA);
  await dlg.getByLabel('Max budget (USD)').fill('2');
  await dlg.getByLabel('Models comma-separated; empty: all').fill('demo');
  await page.locator('dialog').getByRole('button', { name: 'Create key' }).click();
  key = (await page.locator('#new-key').textContent()).trim();
  assert.match(key, /^sk-/);
  await shot('new-key');
  await page.getByRole('button', { name: 'Done' }).click();
  assert.doesNotMatch(page.url(), /sk-/);

  const res = await sdk(key).chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'Hello from the browser test' }] });
  assert.equal(res.choices[0].message.content, 'Echo: Hello from the browser test');
});

test('its spend shows on the overview and in the spend logs', async () => {
  // The spend is settled just after the answer: reload until the overview shows it. The
  // charts read GET /spend/daily (rollups, and this hour from the logs).
  const chart = (title) => page.locator('.chart').filter({ has: page.getByRole('heading', { name: title }) });
  for (let i = 0; ; i++) {
    await page.goto(`${gw.baseURL}/ui/#overview`);
    await page.getByRole('heading', { name: 'Spend per day by model' }).waitFor();
    if ((await chart('Spend per day by model').textContent()).includes('demo')) break;
    assert.ok(i < 30, 'the key\'s spend never reached the overview');
    await page.waitForTimeout(200);
  }
  assert.match(await chart('Calls per day by model').textContent(), /demo/);
  const today = page.locator('.stat').filter({ hasText: 'Spend today (UTC)' });
  assert.ok(Number((await today.locator('.value').textContent()).slice(1)) > 0, 'no spend today on the overview');
  assert.equal(await today.locator('.muted').textContent(), '1 call');
  // The proxy-wide budget (litellm_settings.max_budget) against what it counted.
  const proxy = page.locator('.stat').filter({ hasText: 'Proxy budget' });
  assert.match(await proxy.textContent(), /budget \$50\.00/);
  assert.ok(Number((await proxy.locator('.value').textContent()).slice(1)) > 0, 'the proxy budget counted nothing');
  for (const [group, name] of [['key', 'browser-key'], ['team', 'research']]) {
    await page.getByLabel('Charts by').selectOption({ label: group });
    await textOf(chart(`Spend per day by ${group}`), new RegExp(name));
  }
  await textOf(page.locator('.card').filter({ hasText: 'Keys nearest their budget' }), /browser-key/);
  await page.getByLabel('Charts by').selectOption({ label: 'model' });
  await chart('Spend per day by model').waitFor();
  await shot('overview');

  await page.getByRole('link', { name: 'Spend logs' }).click();
  const row = page.getByRole('row', { name: /Call .*: open details/ }).first();
  await row.waitFor();
  assert.match(await row.textContent(), /demo/);
  await textOf(page.locator('#log-page'), /^Page 1 · 1 call · last page$/);
  await row.press('Enter');
  const detail = page.locator('dialog');
  assert.match(await detail.textContent(), /Hello from the browser test|total_tokens/);
  assert.doesNotMatch(await detail.textContent(), new RegExp(key));
  await shot('spend-log');
  await detail.getByRole('button', { name: 'Close' }).click();
});

test('a blocked key is refused to the SDK', async () => {
  await page.getByRole('link', { name: 'Keys' }).click();
  await page.getByLabel('Alias', { exact: true }).first().fill('browser-key');
  await page.getByRole('button', { name: 'Filter' }).click();
  await textOf(page.locator('#key-page'), /^Page 1 · 1 key · last page$/);
  await page.getByRole('button', { name: 'Block browser-key' }).click();
  await page.getByText('blocked', { exact: true }).waitFor();
  await shot('keys');
  await assert.rejects(
    sdk(key).chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'still there?' }] }),
    (err) => err instanceof OpenAI.AuthenticationError && err.status === 401);
});

test('the 10,000-key table pages', async () => {
  await page.goto(`${gw.baseURL}/ui/#overview`);
  await page.getByRole('link', { name: 'Keys' }).click();
  const status = page.locator('#key-page');
  // Cursor pages: no count of the 10,002 keys on the way (internal/store BenchmarkListKeys_10k).
  await textOf(status, /^Page 1 · 25 keys$/);
  const first = await page.locator('tbody tr').first().textContent();
  await page.getByRole('button', { name: 'Next' }).click();
  await textOf(status, /^Page 2 · 25 keys$/);
  const second = await page.locator('tbody tr').first().textContent();
  assert.notEqual(second, first);
  assert.equal(await page.locator('tbody tr').count(), 25);
  await page.getByRole('button', { name: 'Next' }).click();
  await textOf(status, /^Page 3 · 25 keys$/);
  await page.getByRole('button', { name: 'Previous' }).click();
  await textOf(status, /^Page 2 · 25 keys$/);
  assert.equal(await page.locator('tbody tr').first().textContent(), second);
});

test('an admin edits a team\'s budget and a member\'s budget and role in the browser', async () => {
  await page.getByRole('link', { name: 'Teams' }).click();
  await textOf(page.locator('#team-page'), /^Page 1 · 2 teams$/);
  const research = page.getByRole('region', { name: 'Team research' });
  await research.getByRole('button', { name: 'Edit team research' }).click();
  const dlg = page.locator('dialog');
  assert.equal(await dlg.getByLabel('Max budget (USD)').inputValue(), '20');
  await dlg.getByLabel('Max budget (USD)').fill('30');
  await dlg.getByLabel('Budget duration e.g. 30d, 1mo').fill('30d');
  await dlg.getByRole('button', { name: 'Save' }).click();
  await textOf(research.locator('.stat').first(), /budget \$30\.00/);
  await research.getByRole('button', { name: 'Edit alice in research' }).click();
  await dlg.getByLabel('Budget in this team (USD) empty: none').fill('3');
  await dlg.getByRole('button', { name: 'Save' }).click();
  await textOf(research.getByRole('row', { name: /alice/ }), /\$3\.00/);
  const info = await admin(`/team/info?team_id=${teamA}`);
  assert.equal(info.team_info.max_budget, 30);
  assert.equal(info.team_info.budget_duration, '30d');
  const alicesRole = info.team_info.members_with_roles.find((m) => m.user_id === 'alice').role;
  assert.equal(alicesRole, 'admin', 'saving the budget alone left the role as it was');
  await shot('teams-admin');
});

test('an admin adds, edits and deletes a model stored in DynamoDB; the SDK calls it', async () => {
  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('button', { name: 'Add model' }).click();
  const dlg = page.locator('dialog');
  await dlg.getByLabel('Model name the group callers ask for').fill('browser-model');
  await dlg.getByLabel('Provider model e.g. openai/gpt-4o-mini').fill('mock/browser');
  await dlg.getByLabel('Input price per 1M tokens (USD)').fill('1');
  await dlg.getByLabel('Output price per 1M tokens (USD)').fill('2');
  // A literal secret is refused by the API, and the form says so.
  await dlg.getByLabel('API key reference os.environ/NAME; never the key').fill('sk-literal-secret-value');
  await dlg.getByRole('button', { name: 'Save' }).click();
  await textOf(dlg.getByRole('alert'), /os\.environ/);
  await dlg.getByLabel('API key reference os.environ/NAME; never the key').fill('');
  await dlg.getByRole('button', { name: 'Save' }).click();
  const group = page.getByRole('region', { name: 'Model group browser-model' });
  await textOf(group, /mock\/browser.*\$1\.00.*\$2\.00/);
  const res = await sdk(masterKey).chat.completions.create({ model: 'browser-model', messages: [{ role: 'user', content: 'stored model' }] });
  assert.equal(res.choices[0].message.content, 'Echo: stored model');

  const id = (await group.locator('tbody td').first().textContent()).trim();
  await group.getByRole('button', { name: `Edit model ${id}` }).click();
  assert.equal(await dlg.getByLabel('Input price per 1M tokens (USD)').inputValue(), '1');
  await dlg.getByLabel('RPM').fill('10');
  await dlg.getByRole('button', { name: 'Save' }).click();
  await textOf(group.locator('tbody tr'), /\$2\.0010\b|\$2\.00\s*10/);
  await shot('models');
  // Models of config.yaml are read-only: no edit button.
  assert.equal(await page.getByRole('region', { name: 'Model group demo' }).getByRole('button').count(), 0);

  page.once('dialog', (d) => d.accept());
  await group.getByRole('button', { name: `Delete model ${id}` }).click();
  await page.getByRole('button', { name: 'Add model' }).waitFor();
  for (let i = 0; await page.getByRole('region', { name: 'Model group browser-model' }).count(); i++) {
    assert.ok(i < 50, 'the deleted model stayed on the page');
    await page.waitForTimeout(100);
  }
  await signOut();
});

test('a user\'s overview charts their own keys and teams, and the API refuses another team\'s days', async () => {
  const res = await sdk(alice.key).chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'alice calls' }] });
  assert.equal(res.choices[0].message.content, 'Echo: alice calls');
  await signIn(alice.key);
  const chart = (title) => page.locator('.chart').filter({ has: page.getByRole('heading', { name: title }) });
  // Her user's spend today, settled just after the answer: reload until it shows.
  for (let i = 0; ; i++) {
    await page.goto(`${gw.baseURL}/ui/#overview`);
    const today = page.locator('.stat').filter({ hasText: 'Your spend today (UTC)' });
    await today.waitFor();
    if ((await today.locator('.muted').textContent()) === '1 call') break;
    assert.ok(i < 30, 'alice\'s call never reached her overview');
    await page.waitForTimeout(200);
  }
  await textOf(chart('Spend per day by key'), /sk-/);
  await page.getByLabel('Charts by').selectOption({ label: 'team' });
  // Her team research (the browser key's calls); never billing, where she is no member.
  await textOf(chart('Spend per day by team'), /research/);
  assert.doesNotMatch(await page.locator('#page').textContent(), /billing/);
  await shot('overview-user');
  const get = (path) => fetch(`${gw.baseURL}${path}`, { headers: { Authorization: `Bearer ${alice.key}` } });
  assert.equal((await get(`/spend/daily?team_id=${teamB}`)).status, 404);
  assert.equal((await get('/spend/daily?user_id=default_user_id')).status, 403);
  assert.equal((await get('/spend/daily?group_by=team')).status, 403);
  assert.equal((await get(`/spend/daily?team_id=${teamA}`)).status, 200);
  await signOut();
});

test('a team admin sees their team, not another one', async () => {
  await signIn(alice.key);
  await textOf(page.locator('#who'), /internal_user/);
  assert.equal(await page.getByRole('link', { name: 'Users' }).isVisible(), false);
  await page.getByRole('link', { name: 'Teams' }).click();
  await page.getByRole('heading', { name: 'research' }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'billing' }).count(), 0);
  await shot('teams');
  // The management API itself refuses the other team, whatever the page shows.
  const res = await fetch(`${gw.baseURL}/team/info?team_id=${teamB}`, { headers: { Authorization: `Bearer ${alice.key}` } });
  assert.notEqual(res.status, 200);
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole('link', { name: 'Keys' }).click();
  await textOf(page.locator('#key-page'), /^Page 1 · 1 key · last page$/);
  await shot('phone');
  await signOut();
});

test('no script error and no Content-Security-Policy violation in any step', () => {
  assert.deepEqual(problems, []);
});
