//! A site over a small generated region on a random loopback port, the accounts of each role
//! and a plain HTTP client that keeps a session cookie.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use contingent_access::{Claims, LocalIssuer, Role};
use contingent_domain::{ClassId, LearnerId, OrganizationId};
use contingent_pages::{Account, SignOn};
use contingent_registry::{Registry, Settings};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

/// Who the story is about: a learner in a class this year with a linked parent, a teacher of
/// a subject in that class, another learner the parent is not linked to.
pub struct Cast {
    pub learner: LearnerId,
    pub other_learner: LearnerId,
    pub class: ClassId,
    pub organization: OrganizationId,
    pub teacher: String,
    pub subject: String,
}

pub struct Site {
    pub base: String,
    pub registry: Arc<Registry>,
    pub cast: Cast,
    /// The sign-on's accounts, by role, in the order of the sign-on page.
    pub accounts: Vec<Account>,
    /// The embedded sign-on's key, for API tokens.
    pub issuer: Arc<LocalIssuer>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

pub fn claims(sub: &str, role: Role) -> Claims {
    Claims {
        sub: sub.into(),
        role,
        snils: None,
        org: None,
        municipality: None,
        name: None,
    }
}

impl Site {
    pub async fn start() -> Self {
        Self::start_with(contingent_simulate::Scale::tiny()).await
    }

    /// A site over a region of this scale.
    pub async fn start_with(scale: contingent_simulate::Scale) -> Self {
        Self::start_configured(scale, |_| {}).await
    }

    /// A site over a region of this scale, with settings changed by `configure`.
    pub async fn start_configured(
        scale: contingent_simulate::Scale,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::start_full(scale, configure, None).await
    }

    /// A site whose sign-on page also signs people in at an OpenID Connect issuer, as
    /// `serve --oidc-issuer ISSUER --oidc-client-id CLIENT` does.
    pub async fn start_oidc(issuer: &str, client_id: &str) -> Self {
        Self::start_full(
            contingent_simulate::Scale::tiny(),
            |_| {},
            Some((issuer.to_owned(), client_id.to_owned())),
        )
        .await
    }

    async fn start_full(
        scale: contingent_simulate::Scale,
        configure: impl FnOnce(&mut Settings),
        oidc: Option<(String, String)>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut settings = Settings::new(dir.path());
        configure(&mut settings);
        let registry = Arc::new(
            Registry::open(settings, |_| {})
                .await
                .expect("registry opens"),
        );
        let today = Utc::now().date_naive();
        contingent_simulate::generate(
            &registry,
            &contingent_simulate::Config {
                seed: 7,
                scale,
                today,
            },
            |_, _, _| {},
        )
        .await
        .expect("region generated");
        assert!(
            registry
                .wait_projected(registry.head(), Duration::from_secs(60))
                .await
        );
        let (cast, snils, municipality) = registry.read_state(|s| {
            let mut learners: Vec<_> = s.learners().collect();
            learners.sort_by_key(|(id, _)| id.to_string());
            for (id, l) in &learners {
                let Some(guardian) = l.guardians.first() else {
                    continue;
                };
                for m in l.memberships.iter().filter(|m| m.covers(today)) {
                    let Some(class) = s.class(m.class_id) else {
                        continue;
                    };
                    let Some(a) = class
                        .assignments
                        .iter()
                        .find(|a| a.from <= today && !a.subjects.is_empty())
                    else {
                        continue;
                    };
                    let other = learners
                        .iter()
                        .find(|(_, o)| !o.guardians.contains(guardian))
                        .map(|(id, _)| **id)
                        .expect("another learner");
                    let org = s.organization(class.organization_id).expect("organization");
                    return (
                        Cast {
                            learner: **id,
                            other_learner: other,
                            class: m.class_id,
                            organization: class.organization_id,
                            teacher: a.teacher.as_str().to_owned(),
                            subject: a.subjects[0].as_str().to_owned(),
                        },
                        *guardian,
                        org.municipality.as_str().to_owned(),
                    );
                }
            }
            panic!("the region has a learner in a class today with a parent and a teacher");
        });
        // A kindergarten with a queue: the organization with the most pending applications.
        let (kindergarten,): (String,) = sqlx::query_as(
            "SELECT organization_id FROM vacancy_applications WHERE status = 'pending' \
             GROUP BY organization_id ORDER BY count(*) DESC, organization_id LIMIT 1",
        )
        .fetch_one(registry.read().pool())
        .await
        .expect("a queue in the region");
        let issuer = Arc::new(LocalIssuer::generate(
            contingent_access::LOCAL_ISSUER,
            contingent_access::DEFAULT_AUDIENCE,
        ));
        let verifier = Arc::new(issuer.verifier().expect("verifier"));
        let account = |label: &str, claims: Claims| Account {
            label: label.into(),
            claims,
            start: None,
        };
        let accounts = vec![
            account(
                "Родитель",
                Claims {
                    snils: Some(snils.to_string()),
                    ..claims("parent-1", Role::Parent)
                },
            ),
            account(
                "Учитель",
                Claims {
                    org: Some(cast.organization),
                    ..claims(&cast.teacher, Role::Teacher)
                },
            ),
            account(
                "Школа",
                Claims {
                    org: Some(cast.organization),
                    ..claims("school-admin", Role::Organization)
                },
            ),
            account(
                "Муниципалитет",
                Claims {
                    municipality: Some(municipality),
                    ..claims("mouo", Role::Municipality)
                },
            ),
            account("Регион", claims("minobr", Role::Region)),
            account(
                "Детский сад",
                Claims {
                    org: Some(kindergarten.parse().expect("an organization id")),
                    ..claims("kindergarten-admin", Role::Organization)
                },
            ),
            account("Аудитор", claims("auditor-1", Role::Auditor)),
        ];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let oidc = match oidc {
            Some((issuer, client_id)) => Some(Arc::new(
                contingent_pages::Oidc::discover(&contingent_pages::OidcSettings {
                    issuer,
                    client_id,
                    client_secret: None,
                    redirect_url: format!("{base}/signin/oidc/callback"),
                })
                .await
                .expect("the issuer is discovered"),
            )),
            None => None,
        };
        let sign_on = SignOn {
            issuer: Some(issuer.clone()),
            accounts: accounts.clone(),
            oidc,
        };
        // As `contingent serve` mounts them: the pages under the API's bounds.
        let app = contingent_api::router_with_pages(registry.clone(), verifier.clone(), |rate| {
            contingent_pages::router(registry.clone(), verifier, sign_on, rate)
        });
        let server = tokio::spawn(async move {
            contingent_api::serve(listener, app, std::future::pending())
                .await
                .expect("server runs");
        });
        Site {
            base,
            registry,
            cast,
            accounts,
            issuer,
            _dir: dir,
            server,
        }
    }

    /// The index of the sign-on page's account of a role.
    pub fn account(&self, role: Role) -> usize {
        self.accounts
            .iter()
            .position(|a| a.claims.role == role)
            .expect("an account of the role")
    }

    /// A browser-like client signed in as the (first) account of `role`.
    pub async fn signed_in(&self, role: Role) -> Browser {
        self.signed_in_as(self.account(role)).await
    }

    /// A browser-like client signed in as the sign-on page's account `index`.
    pub async fn signed_in_as(&self, index: usize) -> Browser {
        let mut b = Browser::new(&self.base);
        let page = b.get("/signin").await;
        let nonce = hidden(&page.1, "csrf");
        let (status, _, location) = b
            .post(
                "/signin",
                &[("csrf", nonce.as_str()), ("account", &index.to_string())],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "signed in");
        assert!(location.is_some());
        b
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The value of the first hidden field `name` on a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("the field is on the page") + marker.len();
    page[start..].split('"').next().expect("value").to_owned()
}

/// A client that keeps cookies by hand and does not follow redirects.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
    /// A bearer token sent with every request (for the API's endpoints).
    pub bearer: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            cookies: Vec::new(),
            bearer: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for v in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = v.to_str().expect("cookie");
            let pair = text.split(';').next().expect("pair");
            let (k, v) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    /// The session cookie as set, for checking its attributes.
    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.iter().any(|(k, _)| k == name)
    }

    pub async fn get_raw(&mut self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        self.get_url(&url).await
    }

    /// GET an absolute URL (another site's too), keeping the cookies it sets, not following
    /// redirects.
    pub async fn get_url(&mut self, url: &str) -> reqwest::Response {
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header());
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET");
        self.keep(&response);
        response
    }

    /// GET, following redirects within the site: the status and the page.
    pub async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let mut path = path.to_owned();
        for _ in 0..5 {
            let response = self.get_raw(&path).await;
            if response.status() == StatusCode::SEE_OTHER {
                path = location(&response).expect("Location");
                continue;
            }
            let status = response.status();
            return (status, response.text().await.expect("body"));
        }
        panic!("too many redirects");
    }

    /// POST a form: the status, the page and the Location, not followed.
    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        let body = serde_urlencoded::to_string(form).expect("form");
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep(&response);
        let status = response.status();
        let location = location(&response);
        (status, response.text().await.expect("body"), location)
    }
}

pub fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
