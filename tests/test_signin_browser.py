"""The sign-in page in a real headless browser: Debian's chromium and chromedriver (found with
``shutil.which``, so Selenium Manager downloads nothing), the emulator's Microsoft sign-in form,
then the app password shown used with the caldav library to read and write Alice's calendar.

Never skipped: without chromium the test fails and says how to install it (``.ci/run`` does).
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import caldav
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from radicale_graph.emulator import demo

from .conftest import start_gateway

ALICE_UPN = "alice@contoso.com"


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("chromium and chromedriver are needed on PATH for the browser test: "
                    "apt-get install -y chromium chromium-driver (.ci/run does this)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--ignore-certificate-errors", "--window-size=1200,900"):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=driver)
    session = webdriver.Chrome(service=service, options=options)
    session.set_page_load_timeout(60)
    yield session
    session.quit()


@pytest.fixture(scope="module")
def gateway_url(emu, tmp_path_factory):
    gw, stop = start_gateway(emu, tmp_path_factory.mktemp("browser"), mode="both",
                             refresh_interval=1)
    yield gw.url
    stop()


def test_signin_in_headless_chromium_then_caldav_read_and_write(browser, gateway_url, emu,
                                                                graph):
    wait = WebDriverWait(browser, 30)
    browser.get(f"{gateway_url}/.signin/")
    wait.until(ec.element_to_be_clickable((By.ID, "signin"))).click()
    # The emulator's Microsoft sign-in form (ids as login.microsoftonline.com uses).
    wait.until(ec.visibility_of_element_located((By.ID, "i0116"))).send_keys(ALICE_UPN)
    browser.find_element(By.ID, "i0118").send_keys(demo.USER_PASSWORDS[ALICE_UPN])
    browser.find_element(By.ID, "idSIButton9").click()
    password = wait.until(ec.visibility_of_element_located((By.ID, "app-password"))).text
    assert browser.current_url.startswith(f"{gateway_url}/.signin/callback")
    assert browser.find_element(By.ID, "login").text == ALICE_UPN
    caldav_url = browser.find_element(By.ID, "caldav-url").text
    assert caldav_url == f"{gateway_url}/{ALICE_UPN}/"
    assert password

    # The page of app passwords knows the session (HttpOnly cookie) and lists the new one.
    browser.find_element(By.ID, "passwords").click()
    row = wait.until(ec.visibility_of_element_located(
        (By.ID, f"pw-{password.split('-', 1)[0]}")))
    assert "signed in" in row.text
    cookie = browser.get_cookie("radicale_graph_session")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Lax"

    client = caldav.DAVClient(url=caldav_url, username=ALICE_UPN, password=password)
    calendars = client.principal().calendars()
    default = next(c for c in calendars if c.url.path.rstrip("/").endswith("/calendar"))
    assert default.events()
    day = dt.date.today() + dt.timedelta(days=5)
    subject = f"From the browser sign-in {uuid.uuid4().hex[:6]}"
    default.save_event(
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uuid.uuid4()}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{day:%Y%m%d}T120000Z\r\nDTEND:{day:%Y%m%d}T130000Z\r\n"
        f"SUMMARY:{subject}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    listed = graph("GET", f"/users/{ALICE_UPN}/events",
                   params={"$select": "subject", "$top": "999"}).json()["value"]
    assert subject in {e["subject"] for e in listed}
