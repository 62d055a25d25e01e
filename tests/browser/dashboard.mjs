// Opens the slmgate dashboard in headless Chromium (Debian's), signs in with the admin key,
// waits for the ledger to load, and prints what the page shows as JSON; saves a screenshot.
// Usage: node dashboard.mjs BASE_URL ADMIN_KEY SCREENSHOT.png
import { chromium } from "playwright-core";

const [base, key, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const out = { errors: [], external: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on("pageerror", (e) => out.errors.push(String(e)));
  // The sign-in page is answered with 401, which Chromium logs as a console error: console
  // errors count from the moment the dashboard itself is shown.
  let signedIn = false;
  page.on("console", (m) => signedIn && m.type() === "error" && out.errors.push(m.text()));
  // Air-gapped: anything not served by the gateway itself is recorded and refused.
  await page.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(base)) return route.continue();
    out.external.push(u);
    return route.abort();
  });

  const first = await page.goto(base + "/dashboard");
  out.signin_status = first.status();
  await page.fill("input[name=key]", "not-the-admin-key-000");
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
  out.wrong_key_message = (await page.textContent("p.error"))?.trim() ?? null;

  await page.fill("input[name=key]", key);
  signedIn = true;
  await Promise.all([page.waitForURL(base + "/dashboard"), page.click("button[type=submit]")]);
  await page.waitForSelector("body[data-loaded]", { timeout: 30000 });

  const ids = ["kpi-cost", "kpi-baseline", "kpi-savings", "kpi-savings-pct", "kpi-requests", "kpi-errors",
    "kpi-escalation", "kpi-quality", "kpi-reviewed", "kpi-p95", "kpi-p50", "baseline"];
  out.kpis = {};
  for (const id of ids) out.kpis[id] = (await page.textContent(`[data-testid="${id}"]`)).trim();
  const rows = (sel) => page.$$eval(`${sel} tr[data-name]`, (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
  out.routes = await rows('[data-testid="routes"]');
  out.keys = await rows('[data-testid="keys"]');
  out.charts = await page.evaluate(() => Object.fromEntries(["spend", "tiers", "causes", "latency", "volume"].map((id) => {
    const c = Chart.getChart(id);
    return [id, c ? { labels: c.data.labels, data: c.data.datasets.map((d) => d.data) } : null];
  })));
  await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
