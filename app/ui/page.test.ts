import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithCommand } from '../../test/describe-if.ts';
import { bundledExample, bundledMetadata as metadata } from '../../test/bundled-model.ts';
import { spawnServer, type ServerProcess } from '../../lib/server-process.ts';
import { runCommand } from '../../test/command.ts';

/** Where docs/http-api.md's screenshot is written: SCREENSHOT_PATH, or a temporary folder. */
const SCREENSHOT_PATH = process.env.SCREENSHOT_PATH;

describeWithCommand('chromium', 'chromium', 'the web page in a real browser', () => {
  let server: ServerProcess;
  let browser: Browser;
  let scratch: string;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      spawnServer(),
      chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      }),
    ]);
    scratch = await mkdtemp(path.join(tmpdir(), 'page-'));
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  async function open(width = 1000): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const failures: string[] = [];
    page.on('requestfailed', (request) => failures.push(request.url()));
    page.on('response', (response) => {
      if (response.status() >= 400 && !response.url().includes('/infer')) failures.push(`${response.status()} ${response.url()}`);
    });
    page.on('close', () => expect(failures).toEqual([]));
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.locator('#model-info').textContent()).toMatch(/^Model ecg-autoencoder, version [0-9a-f]{12}, on the (tensorflow|wasm|cpu) backend$/);
    return page;
  }

  /** The server's own p-value and attribution of an example, by the API the page uses. */
  async function expectedExplanation(name: 'normal' | 'anomalous'): Promise<{ pValue: number; attribution: number[] }> {
    const response = await fetch(`${server.url}/v2/models/${metadata.name}/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'beat', shape: [1, 140], datatype: 'FP32', data: bundledExample(name) }], outputs: [{ name: 'p_value' }, { name: 'attribution' }] }),
    });
    const { outputs } = (await response.json()) as { outputs: { data: number[] }[] };
    return { pValue: outputs[0]!.data[0]!, attribution: outputs[1]!.data };
  }

  const pointCount = async (page: Page, selector: string) => ((await page.locator(selector).getAttribute('points')) ?? '').split(' ').filter(Boolean).length;

  it('scores the anomalous example, picked by keyboard: "anomaly", both lines and the gap drawn', async () => {
    const page = await open();
    await page.getByRole('button', { name: /anomalous example beat/ }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#verdict').textContent()).toBe('anomaly');
    expect(await pointCount(page, '#input-line')).toBe(140);
    expect(await pointCount(page, '#reconstruction-line')).toBe(140);
    expect(await pointCount(page, '#gap')).toBe(280);
    expect(Number(await page.locator('#reconstruction-error').textContent())).toBeGreaterThan(metadata.threshold.value);
    expect(await page.locator('#threshold').textContent()).toContain(metadata.threshold.value.toFixed(5));
    // The p-value in words, and the five values that contribute most ringed on the input's line.
    const { pValue, attribution } = await expectedExplanation('anomalous');
    expect(await page.locator('#p-value').textContent()).toBe(`1 in ${Math.round(1 / pValue).toLocaleString('en')} normal beats scores this high (p = ${pValue.toPrecision(2)})`);
    expect(await page.locator('#contributors circle').count()).toBe(5);
    const top = attribution.map((value, index) => ({ value, index })).sort((a, b) => b.value - a.value).slice(0, 5);
    expect(await page.locator('#contributors-list').textContent()).toMatch(new RegExp(`^values ${top.map(({ index }) => index + 1).join(', ')}: \\d+% of the error$`));
    await page.screenshot({ path: SCREENSHOT_PATH ?? path.join(scratch, 'page.png'), fullPage: true });
    await page.close();
  });

  it('scores the normal example: "normal"', async () => {
    const page = await open();
    await page.getByRole('button', { name: /normal example beat/ }).click();
    await expect.poll(() => page.locator('#verdict').textContent()).toBe('normal');
    expect(Number(await page.locator('#reconstruction-error').textContent())).toBeLessThan(metadata.threshold.value);
    expect(await page.locator('#p-value').textContent()).toMatch(/^common: \d+% of normal beats score at least this high \(p = [01]\.\d\d\)$/);
    await page.close();
  });

  it('shows the API’s own error beside the input for a wrong count or a non-number, and clears the result', async () => {
    const page = await open();
    await page.getByRole('button', { name: /anomalous example beat/ }).click();
    await expect.poll(() => page.locator('#verdict').textContent()).toBe('anomaly');

    const beat = bundledExample('normal');
    await page.getByLabel("Or paste the beat's values").fill(beat.slice(1).join(' '));
    await page.getByRole('button', { name: 'Score this beat' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('inputs[0].data has 139 values; shape [1, 140] needs 140');
    expect(await page.locator('#values').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#verdict').textContent()).toBe('–');
    expect(await pointCount(page, '#input-line')).toBe(0);

    await page.locator('#values').fill([...beat.slice(0, 5), 'abc', ...beat.slice(6)].join(', '));
    await page.locator('#values').press('Tab');
    await page.getByRole('button', { name: 'Score this beat' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('inputs[0].data, row 0: value 5 is the string "abc", expected a finite number');
    await page.close();
  });

  it('loads a row of a CSV file (an ECG5000 row with its label)', async () => {
    const page = await open();
    const [normal, anomalous] = [bundledExample('normal'), bundledExample('anomalous')];
    const csv = `${[...normal!, 1].join(',')}\n${[...anomalous!, 0].join(',')}\n`;
    await page.getByLabel('Row', { exact: true }).fill('2');
    await page.getByLabel('Or load a row of a CSV file').setInputFiles({ name: 'beats.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await expect.poll(() => page.locator('#verdict').textContent()).toBe('anomaly');
    expect((await page.locator('#values').inputValue()).split(',')).toHaveLength(140);
    await page.getByLabel('Row', { exact: true }).fill('7');
    await page.getByLabel('Row', { exact: true }).dispatchEvent('change');
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('beats.csv has 2 rows; there is no row 7.');
    await page.close();
  });

  it('is readable at 375 px wide and every control is labelled and reachable by Tab', async () => {
    const page = await open(375);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('button, input, textarea')].filter((control) => {
        const labelled = control.getAttribute('aria-label') || (control as HTMLInputElement).labels?.length || control.textContent?.trim();
        return !labelled;
      }).length,
    );
    expect(unlabelled).toBe(0);
    const reached: string[] = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      reached.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent || ''));
    }
    expect(reached).toEqual(expect.arrayContaining(['Normal beat', 'Anomalous beat', 'values', 'csv-file', 'csv-row', 'score']));
    await page.close();
  });

  it('scores a window of a sequence model: its values drawn step after step, the hint saying so, the legend by its score', async () => {
    const out = path.join(scratch, 'windows');
    const imported = await runCommand('model/import.ts', ['test/fixtures/keras-corpus/bearing_lstm_functional_k2.h5', '--out', out, '--name', 'bearing', '--input-name', 'window', '--normalisation', 'none', '--threshold', '0.05', '--score', 'mse']);
    expect(imported.code, imported.stderr).toBe(0);
    const windows = await spawnServer({ MODEL_PATH: out });
    const page = await browser.newPage();
    try {
      await page.goto(`${windows.url}/`);
      await expect.poll(() => page.locator('#model-info').textContent()).toMatch(/^Model bearing, version /);
      expect(await page.locator('#input-length').textContent()).toBe('7 (a window of 1 step of 7 features, step after step)');
      expect(await page.locator('#gap-legend').textContent()).toBe('the gap: the mean of its square is the reconstruction error');
      await page.getByLabel("Or paste the window's values").fill('0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8');
      await page.getByRole('button', { name: 'Score this window' }).click();
      await expect.poll(() => page.locator('#verdict').textContent()).toMatch(/^(normal|anomaly)$/);
      expect(await pointCount(page, '#input-line')).toBe(7);
      expect(await pointCount(page, '#reconstruction-line')).toBe(7);
      // Imported without --data: no calibration, so no p-value, and it says so.
      expect(await page.locator('#p-value').textContent()).toBe('not known: the model records no calibration');
      expect(await page.locator('#contributors circle').count()).toBe(5);
    } finally {
      await page.close();
      await windows.stop();
    }
  });

  it('asks for the API key of a server that needs one, says when it is refused, and scores with it', async () => {
    const key = 'page-test-key-0c4f3e9a';
    await writeFile(path.join(scratch, 'keys'), `${key}\n`);
    const keyed = await spawnServer({ API_KEYS_FILE: path.join(scratch, 'keys') });
    const page = await browser.newPage();
    try {
      await page.goto(`${keyed.url}/`);
      await expect.poll(() => page.locator('#model-info').textContent()).toBe('This server asks for an API key.');
      await page.getByLabel('API key').fill('a-key-nobody-gave-out');
      await page.getByRole('button', { name: 'Use this key' }).click();
      await expect.poll(() => page.locator('#key-message').textContent()).toBe('The key was refused: give another.');
      await page.getByLabel('API key').fill(key);
      await page.getByLabel('API key').press('Enter');
      await expect.poll(() => page.locator('#model-info').textContent()).toMatch(/^Model ecg-autoencoder, version /);
      expect(await page.locator('#key-form').isHidden()).toBe(true);
      await page.getByRole('button', { name: /anomalous example beat/ }).click();
      await expect.poll(() => page.locator('#verdict').textContent()).toBe('anomaly');
      // Kept for this tab only: sessionStorage, never the URL.
      expect(page.url()).toBe(`${keyed.url}/`);
      expect(await page.evaluate(() => sessionStorage.getItem('anomaly-serve:api-key'))).toBe(key);
    } finally {
      await page.close();
      await keyed.stop();
    }
  });
});
