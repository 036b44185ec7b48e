"""Open a local HTML file in Debian's headless Chromium and collect what a person would see."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# As the machine notes say: without the background-networking flags Chromium keeps trying to
# reach Google's hosts, which this closed network refuses.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass
class Rendered:
    title: str
    console_errors: list[str]
    count: dict[str, int]  # CSS selector → elements found
    text: str


def render(path: Path, selectors: tuple[str, ...]) -> Rendered:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(path.resolve().as_uri())
        count = {s: len(driver.find_elements(By.CSS_SELECTOR, s)) for s in selectors}
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        return Rendered(driver.title, errors, count, driver.find_element(By.TAG_NAME, "body").text)
    finally:
        driver.quit()
