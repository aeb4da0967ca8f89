"""Browser driver of the console's tests (tests/integration/test_console.py).

Runs in its own process (no eventlet: the servers under test run green threads in the pytest process,
which a blocking Playwright call would starve). Reads a scenario as JSON on stdin, drives Debian's
chromium through Playwright (never a downloaded browser) and prints what it saw as JSON on stdout; the
assertions are made by the test.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => (await axe.run(document, {runOnly: {type: 'tag',
    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""

# A page has settled when the console's router has no navigation under way and shows the route of the URL's
# hash, no API request is in flight and no loading mask is shown. A click on a menu link starts a navigation
# whose URL changes only once it is done; a hash set by Tab.open reaches the router one task later: hence both
# the router's guards (installed once per document: a navigation is under way from its beforeEach to its
# afterEach; a redirect or a newer navigation replaces it) and the URL compared with the current route. The
# current route changes only after a lazily loaded page's chunk has arrived; Vue renders the new page and runs
# its onMounted (which starts its requests, counted by window.__zhifaPending) in the microtasks right after,
# so a check made in a later task never sees the new route without the page's first requests.
# (Vue's app is on #app as __vue_app__.)
SETTLED = """() => {
    const app = document.querySelector('#app')?.__vue_app__
    if (!app) return false
    const router = app.config.globalProperties.$router
    if (!window.__zhifaNavigating) {
        const under_way = new Set()
        router.beforeEach((to) => { under_way.clear(); under_way.add(to.fullPath) })
        router.afterEach((to) => { under_way.delete(to.fullPath) })
        window.__zhifaNavigating = under_way
    }
    if (window.__zhifaNavigating.size) return false
    const here = router.resolve(location.hash.slice(1) || '/').fullPath
    return router.currentRoute.value.fullPath === here && window.__zhifaPending === 0
        && !document.querySelector('.el-loading-mask')
}"""


class Tab:
    """One browser context (its own cookies) at 1366×768, every console error and page error kept."""

    def __init__(self, browser, spec: dict):
        # axe-core is injected from node_modules as an inline script, which the console's CSP refuses
        self.ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", bypass_csp=True,
                                       accept_downloads=True)
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(15000)
        self.spec = spec
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def open(self, hash_path: str):
        self.page.goto(f"{self.spec['base']}/#{hash_path}")
        self.settle()

    def settle(self):
        """Wait until the router shows the page of the current URL, its API requests are answered and its
        loading masks are gone (a condition, not a fixed pause: see SETTLED)."""
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_function(SETTLED)

    def login(self, username: str):
        self.open("/login")
        self.page.fill("#login-username", username)
        self.page.fill("#login-password", self.spec["password"])
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_url(lambda url: "/login" not in url)
        self.settle()

    def hash(self) -> str:
        return self.page.url.split("#", 1)[-1]

    def title(self) -> str:
        h1 = self.page.locator("h1.page-title")
        return h1.first.inner_text().strip() if h1.count() else ""

    def main_text(self) -> str:
        return self.page.inner_text("main")

    def alerts(self) -> list[str]:
        return [t.strip() for t in self.page.locator("[role=alert].el-alert--error").all_inner_texts()]

    def menu(self) -> list[str]:
        return [t.strip() for t in self.page.locator("nav.side a").all_inner_texts()]

    def at_rest(self):
        """Wait until no finite CSS transition or animation is running (a tag's colours, a toast fading in or
        out: axe reads a partial opacity or a colour between two as low contrast; a screenshot would catch it
        half-way). An endless animation (a spinner) is no reason to wait; settle() has waited for the
        loading masks."""
        self.page.wait_for_function(
            """() => !document.querySelector('.el-message-fade-enter-active, .el-message-fade-leave-active')
                && document.getAnimations().every(a => a.playState !== 'running'
                    || a.effect?.getComputedTiming().endTime === Infinity)""", timeout=5000)

    def axe(self) -> list[dict]:
        # judge the page at rest (a settled toast is scanned like the rest of the page)
        self.at_rest()
        if not self.page.evaluate("() => !!window.axe"):
            self.page.add_script_tag(path=str(AXE))
        found = self.page.evaluate(AXE_RUN)
        if any("el-message" in str(node) for v in found for node in v.get("nodes", ())):
            # a toast whose time ran out while axe scanned began to fade (2026-12-04: a color-contrast
            # violation on `#message_1 > .el-message__content` once in a full run): judged again at rest,
            # so a toast that really lacks contrast still fails, twice
            self.at_rest()
            found = self.page.evaluate(AXE_RUN)
        return found

    def shot(self, name: str):
        shots = Path(self.spec["shots"])
        shots.mkdir(parents=True, exist_ok=True)
        self.at_rest()
        self.page.screenshot(path=str(shots / f"{name}.png"))

    def close(self):
        self.ctx.close()


def pages(browser, spec: dict) -> dict:
    """Log in as each person, open every entry of the menu; what each page showed (its text too for the
    entries `texts_of` names per person)."""
    out = {}
    for user in spec["users"]:
        tab = Tab(browser, spec)
        tab.login(user)
        seen = {"menu": tab.menu(), "pages": {}}
        for entry in seen["menu"]:
            tab.page.locator("nav.side a", has_text=entry).click()
            tab.settle()
            seen["pages"][entry] = {"title": tab.title(), "alerts": tab.alerts(), "axe": tab.axe(), "hash": tab.hash()}
            if entry in spec.get("texts_of", {}).get(user, ()):
                seen["pages"][entry]["text"] = tab.main_text()
            if shot := spec.get("shots_of", {}).get(user, {}).get(entry):
                tab.shot(shot)
        seen["errors"] = tab.errors
        out[user] = seen
        tab.close()
    return out


def drilldown(browser, spec: dict) -> dict:
    """Supervisor: overview → a chart's sector → the findings behind it → the record; triage; a supervision
    case opened from the finding. Then the department user: its view of that case, another's records."""
    out: dict = {}
    tab = Tab(browser, spec)
    tab.login(spec["supervisor"])
    tab.open("/overview")
    chart = tab.page.locator('[data-chart="未结监督发现按严重程度的分布，点击扇区查看发现列表"]')
    box = chart.bounding_box()
    # the ring's first sector (the most severe) starts at the top and runs clockwise: click just right of it
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    radius = min(box["width"], box["height"]) / 2 * 0.5
    tab.page.mouse.click(cx + radius * 0.17, cy - radius * 0.98)
    tab.page.wait_for_url(lambda url: "/findings" in url)
    tab.settle()
    out["list_hash"] = tab.hash()
    out["list_rows"] = tab.page.locator(".el-table__body-wrapper tr").all_inner_texts()
    tab.page.locator(".el-table__body-wrapper a.link").first.click()
    tab.page.wait_for_url(lambda url: "/cases/" in url)
    tab.settle()
    out["record_hash"] = tab.hash()
    out["record_title"] = tab.title()
    out["record_text"] = tab.main_text()
    if spec.get("shots_of"):
        tab.shot("case")
    # triage in the inbox: the critical finding marked as read, then a supervision case opened from the
    # department's finding
    tab.open("/findings?severity=critical")
    tab.page.locator(".el-table__body-wrapper tr").first.get_by_role("button", name="已阅").click()
    tab.page.locator(".el-message").first.wait_for()
    tab.settle()
    out["after_acknowledge"] = tab.page.locator(".el-table__body-wrapper tr").first.inner_text()
    tab.page.wait_for_function("() => !document.querySelector('.el-message')")  # the notice fades after 3 s
    tab.open(f"/findings?dept={spec['dept']}")
    row = tab.page.locator(".el-table__fixed-right tr, .el-table__body-wrapper tr", has_text=spec["finding_rule"]).last
    row.get_by_role("button", name="立监督案件").click()
    tab.page.locator(".el-message-box").get_by_role("button", name="确定").click()
    message = tab.page.locator(".el-message").first
    message.wait_for()
    if "/supervision" not in tab.page.url and "已立监督案件" not in message.inner_text():
        out["refused"] = message.inner_text()
        return out
    tab.page.wait_for_url(lambda url: "/supervision" in url)
    tab.settle()
    out["supervision_after_open"] = tab.main_text()
    out["sup_errors"] = tab.errors
    tab.close()

    dep = Tab(browser, spec)
    dep.login(spec["dept_user"])
    dep.open("/supervision")
    out["dept_supervision"] = dep.main_text()
    dep.open(f"/cases/{spec['own_case']}")
    out["own_case_title"] = dep.title()
    out["own_case_text"] = dep.main_text()
    for key, path in (("other_case", f"/cases/{spec['other_case']}"), ("other_officer", f"/officers/{spec['other_officer']}")):
        dep.open(path)
        out[key] = {"title": dep.title(), "alerts": dep.alerts(), "text": dep.main_text()}
    # the browser reports the refused requests (404) of those two pages as console errors; nothing else may appear
    out["dept_errors"] = dep.errors
    dep.close()
    return out


def public(browser, spec: dict) -> dict:
    """No login: the public pages; a page that needs a login sends to the login page."""
    tab = Tab(browser, spec)
    tab.open(f"/public?dept={spec['dept']}")
    out = {"title": tab.title(), "text": tab.main_text(), "axe": tab.axe(), "menu": tab.menu()}
    if spec.get("shots_of"):
        tab.shot("public")
    tab.open("/cases")
    out["cases_hash"] = tab.hash()
    out["errors"] = tab.errors
    tab.close()
    return out


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def run(scenarios: dict) -> int:
    """Read the scenario's spec on stdin, run it (`scenarios`: name -> function(browser, spec)), print what
    it saw. Other scripts of console/e2e call this with their own scenarios (`from driver import Tab, run`)."""
    spec = json.load(sys.stdin)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            result = scenarios[spec["scenario"]](browser, spec)
        finally:
            browser.close()
    json.dump(result, sys.stdout, ensure_ascii=False)
    return 0


def serve(port_file: str) -> int:
    """One browser for a whole test run (tests/console_kit.drive): listen on a local TCP port (written to
    `port_file`), take one request per connection, a JSON line {"script": a module of console/e2e with
    SCENARIOS, "spec": {"scenario": ..., ...}}, and answer a JSON line {"result": ...} or {"error": traceback}.
    Every scenario's Tabs are browser contexts of their own (own cookies, storage and cache); whatever a
    failed scenario left open is closed before the next. Ends on SIGTERM or when the test process is gone."""
    import importlib
    import os
    import signal
    import socket
    import traceback

    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with sync_playwright() as p, socket.socket() as listener:
        browser = None
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(1.0)
        Path(port_file).write_text(str(listener.getsockname()[1]))
        try:
            while os.getppid() == parent:
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    continue
                conn.settimeout(None)
                with conn, conn.makefile("rwb") as stream:
                    request = json.loads(stream.readline())
                    try:
                        if browser is None or not browser.is_connected():
                            browser = launch(p)
                        scenarios = importlib.import_module(request["script"]).SCENARIOS
                        reply = {"result": scenarios[request["spec"]["scenario"]](browser, request["spec"])}
                    except Exception:
                        reply = {"error": traceback.format_exc()}
                    finally:
                        for ctx in list(browser.contexts if browser is not None and browser.is_connected() else []):
                            ctx.close()
                    stream.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
                    stream.flush()
        finally:
            if browser is not None and browser.is_connected():
                browser.close()
    return 0


SCENARIOS = {"pages": pages, "drilldown": drilldown, "public": public}


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        return serve(sys.argv[2])
    return run(SCENARIOS)


if __name__ == "__main__":
    sys.exit(main())
