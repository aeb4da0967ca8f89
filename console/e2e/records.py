"""Browser scenarios of the console's record pages (tests/integration/test_console_records.py), built on
driver.py's Tab and run(): every record page as each role, a draw verified in the browser (and a tampered
record refused), the public draw page without login, another department's records refused by URL."""
from __future__ import annotations

import json
import sys

from driver import Tab, run


def tab_of(browser, spec: dict) -> Tab:
    """A Tab with the patience of a busy machine (the servers share two cores with the rest of the suite)."""
    tab = Tab(browser, spec)
    tab.page.set_default_timeout(60000)
    return tab


def go(tab: Tab, path: str) -> None:
    """Open a console path; Tab.open settles until the router has shown it (a hash change resolves at once,
    while the page's lazily loaded chunk may still be on its way)."""
    tab.open(path)


def visit(tab: Tab, path: str) -> dict:
    go(tab, path)
    return {"title": tab.title(), "alerts": tab.alerts(), "axe": tab.axe(), "hash": tab.hash(), "text": tab.main_text()}


def verify_on_page(tab: Tab) -> str:
    tab.page.get_by_role("button", name="在浏览器中复核").click()
    box = tab.page.locator("[data-verification]")
    box.wait_for()
    return box.inner_text()


def records(browser, spec: dict) -> dict:
    """Each person: its menu, then every page of `spec['pages']` (name -> console path); screenshots of the
    supervisor's; the draw verified on its record page, a tampered copy refused; the department user's
    attempts at another department's records."""
    out: dict = {}
    for user in spec["users"]:
        tab = tab_of(browser, spec)
        tab.login(user)
        seen = {"menu": tab.menu(), "pages": {}}
        for name, path in spec["pages"].items():
            seen["pages"][name] = visit(tab, path)
            if user == spec["supervisor"] and name in spec["shots_of"]:
                tab.shot(spec["shots_of"][name])
        if user == spec["supervisor"]:
            go(tab, f"/draws/{spec['draw']}")
            seen["verified"] = verify_on_page(tab)
            tab.page.locator("[data-verification]").scroll_into_view_if_needed()
            tab.shot("draw-verified")
            # a copy of the published record with one drawn target swapped: the browser must refuse it
            record = json.loads(tab.page.evaluate(
                "async (u) => await (await fetch(u, {credentials: 'same-origin'})).text()", f"/api/v1/public/draws/{spec['draw']}"))
            tampered = record["record"]
            tampered["result"]["targets"][0]["id"] = spec["swap_in"]
            tab.page.get_by_text("复核其他抽取记录（粘贴记录 JSON）").click()
            tab.page.get_by_label("抽取记录 JSON").fill(json.dumps(tampered, ensure_ascii=False))
            tab.page.get_by_role("button", name="复核粘贴的记录").click()
            tab.page.wait_for_function("() => document.querySelector('[data-verification]').innerText.includes('不通过')")
            seen["tampered"] = tab.page.locator("[data-verification]").inner_text()
            go(tab, f"/public/draws/{spec['draw']}")
            seen["public_links"] = tab.page.locator("main a.link").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        if user == spec["dept_user"]:
            for name, path in spec["others"].items():
                go(tab, path)
                seen.setdefault("others", {})[name] = {"title": tab.title(), "alerts": tab.alerts(), "text": tab.main_text()}
        seen["errors"] = tab.errors
        out[user] = seen
        tab.close()
    # no login: the public page's draw lookup links to the draw's public page, which verifies it
    anon = tab_of(browser, spec)
    anon.open(f"/public?tab=draws&draw={spec['draw']}")
    out["public_lookup_links"] = anon.page.locator("main a.link").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    anon.page.get_by_role("link", name="查看抽取公示并在浏览器中复核").click()   # follow the link, as a citizen would
    anon.page.wait_for_url(lambda url: "/public/draws/" in url)
    anon.settle()
    page = {"title": anon.title(), "alerts": anon.alerts(), "axe": anon.axe(), "hash": anon.hash(), "text": anon.main_text()}
    page["verified"] = verify_on_page(anon)
    page["errors"] = anon.errors
    out["public"] = page
    anon.close()
    # a shared link to the public draw page, opened in a fresh browser
    shared = tab_of(browser, spec)
    shared.open(f"/public/draws/{spec['draw']}")
    shared.page.locator("h1.page-title").first.wait_for()
    out["shared_link"] = {"title": shared.title(), "alerts": shared.alerts(), "errors": shared.errors}
    shared.close()
    return out


SCENARIOS = {"records": records}

if __name__ == "__main__":
    sys.exit(run(SCENARIOS))
