//! The region every benchmark starts from: generated once through the normal command path by
//! `contingent_simulate` (the demo scale, times `--scale`), kept under `target/bench/` keyed by
//! seed, scale and date so later runs reuse it, and copied for each benchmark that writes.
//! Also the command stream the append benchmarks drive: marks, which dominate a school year.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{Datelike, Days, NaiveDate, Weekday};
use contingent_domain::{
    AcademicYear, Attendance, AttendanceRecorded, ChangeClassCapacity, ClassId, Command, LearnerId,
    Level, Mark, MarkId, MarkKind, MarkRecorded, OrganizationId, SourceKind, State, Text,
    MAX_CAPACITY,
};
use contingent_log::{EventLog, Metadata, Source};
use contingent_log_sqlite::SqliteLog;
use contingent_registry::{Registry, Settings};
use contingent_simulate::{Config, Scale};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::report::Recorder;

/// The files of an embedded registry.
const FILES: &[&str] = &["log.db", "read.db", "journal.db"];

/// What the generated region holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    #[serde(skip)]
    pub dir: PathBuf,
    pub seed: u64,
    pub scale: u32,
    pub today: NaiveDate,
    pub learners: usize,
    pub organizations: usize,
    pub commands: u64,
    pub events: u64,
    pub generate_seconds: f64,
    pub project_seconds: f64,
}

/// The demo scale times `factor`.
pub fn scale(factor: u32) -> Scale {
    let f = factor.max(1) as usize;
    let demo = Scale::demo();
    Scale {
        municipalities: demo.municipalities * f,
        schools: demo.schools * f,
        kindergartens: demo.kindergartens * f,
        additional: demo.additional * f,
        colleges: demo.colleges * f,
        learners: demo.learners * f,
    }
}

impl Fixture {
    /// The region of `seed` and `factor` as of today: reused from `root` if generated before,
    /// else generated now (its generation rate is recorded as a figure).
    pub async fn get(root: &Path, seed: u64, factor: u32, rec: &Recorder) -> Result<Self> {
        let today = chrono::Utc::now().date_naive();
        let format = contingent_log_sqlite::FORMAT_VERSION;
        let dir = root.join(format!("region-seed{seed}-x{factor}-{today}-log{format}"));
        let marker = dir.join("fixture.json");
        if let Ok(text) = std::fs::read_to_string(&marker) {
            let mut f: Fixture = serde_json::from_str(&text)?;
            f.dir = dir;
            rec.note(&format!(
                "region reused from {} ({} learners, {} organizations, {} events)",
                f.dir.display(),
                f.learners,
                f.organizations,
                f.events
            ));
            return Ok(f);
        }
        let building = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&building);
        std::fs::create_dir_all(&building)?;
        let config = Config {
            seed,
            scale: scale(factor),
            today,
        };
        rec.note(&format!(
            "generating the region ({} learners, {} schools) through the command path",
            config.scale.learners, config.scale.schools
        ));
        let registry = Registry::open(Settings::new(&building), |_| {})
            .await
            .context("opening the registry for the region")?;
        let report = contingent_simulate::generate(&registry, &config, |_, _, _| {})
            .await
            .context("generating the region")?;
        let generated = report.elapsed;
        let waiting = Instant::now();
        if !registry.wait_caught_up(Duration::from_secs(3600)).await {
            bail!("the read models did not catch up with the generated region");
        }
        let projected = waiting.elapsed();
        let (organizations, learners) = registry.read_state(|s| {
            let c = s.counts();
            (c[0], c[2])
        });
        let events = registry.head();
        registry.shutdown().await;
        let fixture = Fixture {
            dir: dir.clone(),
            seed,
            scale: factor,
            today,
            learners,
            organizations,
            commands: report.commands,
            events,
            generate_seconds: generated.as_secs_f64(),
            project_seconds: projected.as_secs_f64(),
        };
        rec.figure(
            "region",
            "generate_events_per_s",
            events as f64 / generated.as_secs_f64(),
            "events/s",
            serde_json::json!({
                "what": "simulated region through Registry::submit, read models projected in the same process",
                "commands": report.commands, "events": events, "learners": learners,
                "seconds": crate::report::round(generated.as_secs_f64(), 2),
                "read_models_caught_up_after_s": crate::report::round(projected.as_secs_f64(), 2),
            }),
        );
        std::fs::write(
            building.join("fixture.json"),
            serde_json::to_string_pretty(&fixture)?,
        )?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&building, &dir)?;
        Ok(fixture)
    }

    /// Copies the region's files (`files`, a subset of log.db, read.db, journal.db) into `to`,
    /// and always its key store (`keys.db` and the keys in `keys/`): without it a registry over
    /// the copy reads every sealed personal field as erased, and its state holds no SNILS, civil
    /// record or guardian as the region's writer does.
    pub fn copy_to(&self, to: &Path, files: &[&str]) -> Result<()> {
        std::fs::create_dir_all(to)?;
        for file in FILES
            .iter()
            .filter(|f| files.contains(f))
            .chain(std::iter::once(&"keys.db"))
        {
            for suffix in ["", "-wal", "-shm"] {
                let from = self.dir.join(format!("{file}{suffix}"));
                if from.exists() {
                    std::fs::copy(&from, to.join(format!("{file}{suffix}")))
                        .with_context(|| format!("copying {}", from.display()))?;
                }
            }
        }
        let keys = self.dir.join("keys");
        if keys.is_dir() {
            std::fs::create_dir_all(to.join("keys"))?;
            for entry in std::fs::read_dir(&keys)? {
                let entry = entry?;
                std::fs::copy(entry.path(), to.join("keys").join(entry.file_name()))
                    .with_context(|| format!("copying {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log.db")
    }

    /// The state of the region folded from its log as stored, without the key store: its
    /// personal fields read as erased. For the classes, learners and marks the benchmarks send
    /// commands about, which is all it is used for; the writer's own state opens them.
    pub async fn state(&self) -> Result<State> {
        let log = SqliteLog::open(&self.log_path()).await?;
        let mut state = State::new();
        let mut at = 0;
        loop {
            let page = log.read_after(at, 10_000).await?;
            let Some(last) = page.last() else { break };
            at = last.position();
            for e in &page {
                state.apply(&e.envelope.event);
            }
        }
        log.close().await;
        Ok(state)
    }
}

/// A learner's stay in a general-education class, and the school days a mark can be dated on.
struct Stay {
    learner: LearnerId,
    class: ClassId,
    organization: OrganizationId,
    teacher: String,
    days: Vec<NaiveDate>,
}

const SUBJECTS: &[&str] = &[
    "Русский язык",
    "Литература",
    "Математика",
    "Алгебра",
    "Геометрия",
    "История",
    "Обществознание",
    "География",
    "Биология",
    "Физика",
    "Химия",
    "Английский язык",
    "Информатика",
];

const WORKS: &[(&str, u8)] = &[
    ("ответ на уроке", 1),
    ("домашняя работа", 1),
    ("самостоятельная работа", 2),
    ("контрольная работа", 3),
];

fn school_days(from: NaiveDate, until: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= until {
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            out.push(d);
        }
        match d.checked_add_days(Days::new(1)) {
            Some(next) => d = next,
            None => break,
        }
    }
    out
}

/// Every stay in a general-education class of the current academic year that is open today,
/// with its school days up to today; or, before the year has a school day, the previous year's.
fn stays(state: &State, today: NaiveDate) -> Vec<Stay> {
    let mut out = Vec::new();
    let mut learners: Vec<_> = state.learners().collect();
    learners.sort_by_key(|(id, _)| **id);
    for year in [
        AcademicYear::containing(today),
        AcademicYear::starting(AcademicYear::containing(today).start_year() - 1),
    ] {
        for (id, learner) in &learners {
            if learner.died_on.is_some() {
                continue;
            }
            for m in &learner.memberships {
                let Some(class) = state.class(m.class_id) else {
                    continue;
                };
                if class.academic_year != year || class.level != Level::General {
                    continue;
                }
                let first = m.from.max(year.first_day());
                let mut last = today.min(year.last_day());
                if let Some(until) = m.until {
                    last = last.min(until.pred_opt().unwrap_or(until));
                }
                let days = school_days(first, last);
                if days.is_empty() {
                    continue;
                }
                out.push(Stay {
                    learner: **id,
                    class: m.class_id,
                    organization: class.organization_id,
                    teacher: class
                        .teachers
                        .first()
                        .map_or_else(|| "teacher-bench".to_owned(), |t| t.as_str().to_owned()),
                    days,
                });
            }
        }
        if !out.is_empty() {
            break;
        }
    }
    out
}

fn text(s: &str) -> Text {
    Text::parse(s).expect("a constant text is valid")
}

/// `n` `record_mark` commands for learners of the region, each one the registry accepts:
/// dealt round-robin over the open class stays (so neighbouring commands concern different
/// learners), dated on a school day of the stay, deterministic for `seed`.
pub fn mark_commands(
    state: &State,
    today: NaiveDate,
    n: usize,
    seed: u64,
) -> Result<Vec<(Command, Metadata)>> {
    let stays = stays(state, today);
    if stays.is_empty() {
        bail!("the region has no learner in a general-education class to mark");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let stay = &stays[i % stays.len()];
        let date = stay.days[rng.gen_range(0..stay.days.len())];
        let (work, weight) = WORKS[rng.gen_range(0..WORKS.len())];
        let mut id = [0u8; 16];
        rng.fill(&mut id);
        let command = Command::RecordMark(MarkRecorded {
            mark_id: MarkId::from_uuid(uuid::Builder::from_random_bytes(id).into_uuid()),
            learner_id: stay.learner,
            class_id: stay.class,
            subject: text(SUBJECTS[rng.gen_range(0..SUBJECTS.len())]),
            lesson_date: date,
            kind: MarkKind::Current,
            work: text(work),
            period: None,
            value: Mark::from_points(rng.gen_range(2..=5)).unwrap_or(Mark::Four),
            weight,
            teacher: text(&stay.teacher),
        });
        let meta = Metadata {
            source: Source {
                kind: SourceKind::Organization,
                id: stay.organization.to_string(),
            },
            actor: stay.teacher.clone(),
            idempotency_key: None,
            request_fingerprint: None,
        };
        out.push((command, meta));
    }
    Ok(out)
}

/// How many distinct learners the commands concern.
pub fn learners_of(commands: &[(Command, Metadata)]) -> usize {
    let mut ids: Vec<LearnerId> = commands
        .iter()
        .filter_map(|(c, _)| match c {
            Command::RecordMark(m) => Some(m.learner_id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// A school day of the region as commands: one attendance record for every learner in a
/// general-education class (on the last school day of their stay up to `today`; one in twelve
/// ill, the rest present) and one and a half marks per learner (`mark_commands`), interleaved.
pub fn school_day(state: &State, today: NaiveDate, seed: u64) -> Result<Vec<(Command, Metadata)>> {
    let stays = stays(state, today);
    let marks = mark_commands(state, today, stays.len() * 3 / 2, seed ^ 0x5c00_1d4e)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut attendance = Vec::with_capacity(stays.len());
    for stay in &stays {
        let Some(&date) = stay.days.last() else {
            continue;
        };
        let status = if rng.gen_range(0..12) == 0 {
            Attendance::Ill
        } else {
            Attendance::Present
        };
        attendance.push((
            Command::RecordAttendance(AttendanceRecorded {
                learner_id: stay.learner,
                class_id: stay.class,
                date,
                lesson: None,
                status,
            }),
            Metadata {
                source: Source {
                    kind: SourceKind::Organization,
                    id: stay.organization.to_string(),
                },
                actor: stay.teacher.clone(),
                idempotency_key: None,
                request_fingerprint: None,
            },
        ));
    }
    // Two marks, then one attendance record, and so on: the day's order, roughly.
    let mut out = Vec::with_capacity(marks.len() + attendance.len());
    let mut marks = marks.into_iter();
    for a in attendance {
        out.extend(marks.by_ref().take(2));
        out.push(a);
    }
    out.extend(marks);
    Ok(out)
}

/// `n` region-wide `change_class_capacity` commands, each about no learner: the current year's
/// classes in turn, each raised by one place and lowered again, so every one is accepted.
pub fn capacity_changes(state: &State, today: NaiveDate, n: usize) -> Vec<(Command, Metadata)> {
    let year = AcademicYear::containing(today);
    let mut classes: Vec<(ClassId, u16)> = state
        .classes()
        .filter(|(_, c)| c.academic_year == year && c.capacity < MAX_CAPACITY)
        .map(|(id, c)| (*id, c.capacity))
        .collect();
    classes.sort_unstable();
    let mut out = Vec::with_capacity(n);
    if classes.is_empty() {
        return out;
    }
    for i in 0..n {
        let (class_id, capacity) = classes[(i / 2) % classes.len()];
        let capacity = if i % 2 == 0 { capacity + 1 } else { capacity };
        out.push((
            Command::ChangeClassCapacity(ChangeClassCapacity {
                class_id,
                capacity,
                reason: None,
            }),
            Metadata {
                source: Source {
                    kind: SourceKind::Region,
                    id: "region".to_owned(),
                },
                actor: "region-bench".to_owned(),
                idempotency_key: None,
                request_fingerprint: None,
            },
        ));
    }
    out
}
