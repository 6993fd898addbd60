//! The pages in a real headless Chromium driven over WebDriver: each role signs in on the
//! sign-on page and walks its main page (a screenshot of each is written; the region also opens
//! the analyst's other pages through their tabs, each with a screenshot), and the story of a
//! mark: a teacher records it through the register's form, the parent sees it in the diary, the
//! auditor sees its event in the learner's timeline.
//!
//! Needs `CHROMEDRIVER` (the path of `chromedriver`; `scripts/test` sets it, installing Debian's
//! `chromium` and `chromium-driver` when missing) and, optionally, `CHROMIUM` (the browser,
//! `/usr/bin/chromium` by default). Screenshots go to `PAGES_SCREENSHOTS` (the command in
//! `docs/pages.md` writes them to `docs/pages/`), else to `target/pages-screenshots`.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use contingent_access::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use support::Site;

/// A chromedriver of our own on a free port, and a headless browser session through it.
struct Driver {
    client: Client,
    _process: Killed,
}

/// A child process ended when this is dropped, also when a test panics.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn driver() -> Option<Driver> {
    let Ok(path) = std::env::var("CHROMEDRIVER") else {
        eprintln!(
            "\n*** SKIPPED: browser tests need CHROMEDRIVER (the path of chromedriver; scripts/test installs chromium-driver and sets it) ***\n"
        );
        return None;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let process = Killed(
        Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {path}: {e}")),
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--lang=ru-RU", "--hide-scrollbars"],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Some(Driver {
                    client,
                    _process: process,
                })
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("no WebDriver session from {path}: {last:?}");
}

fn screenshots() -> PathBuf {
    // A relative directory is taken from the workspace's root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join(
        std::env::var("PAGES_SCREENSHOTS").unwrap_or_else(|_| "target/pages-screenshots".into()),
    );
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Clicks an element that leads to another page, and waits until that page is there.
async fn click_through(client: &Client, element: fantoccini::elements::Element) {
    let before = client.current_url().await.unwrap();
    element.click().await.unwrap();
    for _ in 0..100 {
        if client.current_url().await.unwrap() != before {
            client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css("h1"))
                .await
                .unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no other page after the click on {before}");
}

async fn sign_in(client: &Client, site: &Site, role: Role) {
    client.goto(&format!("{}/signin", site.base)).await.unwrap();
    let button = client
        .find(Locator::Css(&format!(
            "button[data-role='{}']",
            role.as_str()
        )))
        .await
        .unwrap();
    click_through(client, button).await;
}

async fn sign_out(client: &Client) {
    let button = client
        .find(Locator::Css("header form button"))
        .await
        .unwrap();
    click_through(client, button).await;
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/signin");
}

async fn heading(client: &Client) -> String {
    client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_role_signs_in_and_walks_its_main_page_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let site = Site::start().await;
    let c = &driver.client;
    let dir = screenshots();
    c.goto(&format!("{}/signin", site.base)).await.unwrap();
    std::fs::write(dir.join("signin.png"), c.screenshot().await.unwrap()).unwrap();
    for (role, name, expected) in [
        (Role::Parent, "parent", "Дневник: "),
        (Role::Teacher, "teacher", "Журнал "),
        (Role::Organization, "school", "Организация: "),
        (Role::Municipality, "municipality", "Контингент: "),
        (Role::Region, "region", "Контингент: регион"),
        (Role::Auditor, "auditor", "Хронология обучающегося"),
    ] {
        sign_in(c, &site, role).await;
        // Walk: the main page, then one step into it.
        match role {
            Role::Teacher => {
                assert_eq!(heading(c).await, "Классный журнал");
                c.goto(&format!("{}/register/{}", site.base, site.cast.class))
                    .await
                    .unwrap();
            }
            Role::Auditor => {
                assert_eq!(heading(c).await, "Аудит журнала событий");
                let field = c.find(Locator::Css("input[name='id']")).await.unwrap();
                field
                    .send_keys(&site.cast.learner.to_string())
                    .await
                    .unwrap();
                let button = c.find(Locator::Css("form.box button")).await.unwrap();
                click_through(c, button).await;
            }
            _ => {}
        }
        let h1 = heading(c).await;
        assert!(h1.starts_with(expected), "{role:?}: {h1}");
        std::fs::write(
            dir.join(format!("{name}.png")),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        if role == Role::Region {
            // The analyst's other pages, through the tabs: each with its heading, and the
            // movements and the queues with their charts.
            for (tab, expected, file, chart) in [
                (
                    "/analytics/movements",
                    "Движение контингента по месяцам: регион",
                    "region-movements",
                    true,
                ),
                (
                    "/analytics/queues",
                    "Места и очереди: регион",
                    "region-queues",
                    true,
                ),
                (
                    "/analytics/exams",
                    "Результаты экзаменов: регион",
                    "region-exams",
                    false,
                ),
            ] {
                let link = c
                    .find(Locator::Css(&format!("nav.tabs a[href='{tab}']")))
                    .await
                    .unwrap();
                click_through(c, link).await;
                let h1 = heading(c).await;
                assert!(h1.starts_with(expected), "{tab}: {h1}");
                if chart {
                    c.find(Locator::Css(".charts figure svg")).await.unwrap();
                }
                std::fs::write(
                    dir.join(format!("{file}.png")),
                    c.screenshot().await.unwrap(),
                )
                .unwrap();
            }
        }
        sign_out(c).await;
    }
}

#[tokio::test]
async fn a_mark_from_the_teachers_form_reaches_the_diary_and_the_timeline_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let site = Site::start().await;
    let c = &driver.client;
    let learner = site.cast.learner.to_string();
    let work = "самостоятельная работа в браузере";

    sign_in(c, &site, Role::Teacher).await;
    c.goto(&format!("{}/register/{}", site.base, site.cast.class))
        .await
        .unwrap();
    let form = c.find(Locator::Css("#record-mark")).await.unwrap();
    form.find(Locator::Css("select[name='learner_id']"))
        .await
        .unwrap()
        .select_by_value(&learner)
        .await
        .unwrap();
    form.find(Locator::Css("select[name='subject']"))
        .await
        .unwrap()
        .select_by_value(&site.cast.subject)
        .await
        .unwrap();
    form.find(Locator::Css("select[name='value']"))
        .await
        .unwrap()
        .select_by_value("4")
        .await
        .unwrap();
    let field = form.find(Locator::Css("input[name='work']")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(work).await.unwrap();
    let button = form.find(Locator::Css("button")).await.unwrap();
    click_through(c, button).await;
    let notice = c
        .find(Locator::Css("p.notice"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.starts_with("Отметка записана"), "{notice}");
    let position = site.registry.head();
    sign_out(c).await;

    sign_in(c, &site, Role::Parent).await;
    c.goto(&format!("{}/diary/{learner}", site.base))
        .await
        .unwrap();
    let diary = c.source().await.unwrap();
    assert!(
        diary.contains(work),
        "the parent sees the mark in the diary"
    );
    sign_out(c).await;

    sign_in(c, &site, Role::Auditor).await;
    c.goto(&format!("{}/audit/learners/{learner}", site.base))
        .await
        .unwrap();
    c.find(Locator::Css("select[name='type']"))
        .await
        .unwrap()
        .select_by_value("mark_recorded")
        .await
        .unwrap();
    let button = c.find(Locator::Css("form.box button")).await.unwrap();
    click_through(c, button).await;
    let rows = c
        .find_all(Locator::Css("#timeline tr[data-type='mark_recorded']"))
        .await
        .unwrap();
    let mut seen = false;
    for row in rows {
        let text = row.text().await.unwrap();
        if text.starts_with(&position.to_string()) && text.contains(&site.cast.teacher) {
            seen = true;
        }
    }
    assert!(seen, "the auditor sees the event at position {position}");
}
