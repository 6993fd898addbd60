//! From the plan to commands: each stage as waves of commands. The commands of one wave are
//! independent of each other; a wave is submitted only after the one before it is acknowledged.

use contingent_domain::SourceKind;
use contingent_domain::{
    ApplicationSubmitted, AttendanceRecorded, BirthRegistered, ChangeClassCapacity, ClassOpened,
    Command, Consent, EducationForm, Enroll, EnrollmentId, GuardianLinked, LearnerRegistered,
    Leave, Level, Mark, MarkId, MarkKind, MarkRecorded, OrganizationRegistered, Programme,
    RecordExamResult, RejectApplication, SnilsRecorded, TeacherAssigned, Transfer, UnassignTeacher,
    WithdrawApplication,
};
use contingent_log::{Metadata, Source};

use crate::plan::{plus, text, uuid, Decision, EnrollP, LeaveP, Origin, Plan, TransferP};
use crate::submit::Item;

/// The regional education authority.
pub(crate) const REGION: &str = "Министерство образования и науки Алтайского края";
/// The e-services portal.
pub(crate) const PORTAL: &str = "ЕПГУ (Госуслуги)";
/// The regional exam centre.
pub(crate) const EXAM_CENTRE: &str = "РЦОИ Алтайского края";

pub(crate) fn meta(kind: SourceKind, id: &str, actor: &str) -> Metadata {
    Metadata {
        source: Source {
            kind,
            id: id.to_owned(),
        },
        actor: actor.to_owned(),
        idempotency_key: None,
        request_fingerprint: None,
    }
}

pub(crate) fn item(command: Command, meta: Metadata) -> Item {
    Item {
        command,
        meta,
        expect: None,
    }
}

impl Plan {
    pub(crate) fn org_meta(&self, org: usize, actor: &str) -> Metadata {
        meta(
            SourceKind::Organization,
            &self.orgs[org].id.to_string(),
            actor,
        )
    }

    /// The assignment of a class's teacher, by index into the class's assignments.
    fn assignment(&self, class: usize, index: usize) -> Item {
        let c = &self.classes[class];
        let a = &c.teachers[index];
        let teacher = &self.teachers[a.teacher];
        item(
            Command::AssignTeacher(TeacherAssigned {
                class_id: c.id,
                organization_id: self.orgs[c.key.org].id,
                teacher: text(&teacher.account),
                teacher_name: text(&teacher.name),
                subjects: a.subjects.iter().map(|s| text(s)).collect(),
                from: a.from,
            }),
            self.org_meta(c.key.org, "org-operator"),
        )
    }

    /// Stage 1: the directory — organizations, their classes, then the teachers of the school
    /// classes (those who take over a class during the year are assigned with the transfers).
    pub(crate) fn directory_waves(&self) -> Vec<Vec<Item>> {
        let orgs = self
            .orgs
            .iter()
            .map(|o| {
                item(
                    Command::RegisterOrganization(OrganizationRegistered {
                        organization_id: o.id,
                        name: text(&o.name),
                        municipality: text(&self.munis[o.muni].name),
                        kind: o.kind,
                        levels: o.levels.clone(),
                    }),
                    meta(SourceKind::Region, REGION, "region-operator"),
                )
            })
            .collect();
        let classes = self
            .classes
            .iter()
            .map(|c| {
                item(
                    Command::OpenClass(ClassOpened {
                        class_id: c.id,
                        organization_id: self.orgs[c.key.org].id,
                        academic_year: c.key.year,
                        level: c.key.level,
                        grade: c.key.grade,
                        name: text(&c.name),
                        capacity: c.capacity,
                        stay_mode: c.stay_mode,
                    }),
                    self.org_meta(c.key.org, "org-operator"),
                )
            })
            .collect();
        let later: Vec<(usize, usize)> = self
            .replacements
            .iter()
            .map(|r| (r.class, r.started))
            .collect();
        let mut teachers = Vec::new();
        for (c, class) in self.classes.iter().enumerate() {
            for k in 0..class.teachers.len() {
                if !later.contains(&(c, k)) {
                    teachers.push(self.assignment(c, k));
                }
            }
        }
        vec![orgs, classes, teachers]
    }

    fn birth_command(&self, i: usize) -> Option<Item> {
        let l = &self.learners[i];
        match &l.origin {
            Origin::Birth {
                record,
                certificate,
            } => Some(item(
                Command::RegisterBirth(BirthRegistered {
                    learner_id: l.id,
                    record: record.clone(),
                    child: l.name.clone(),
                    sex: l.sex,
                    birth_date: l.birth,
                    certificate: Some(certificate.clone()),
                    snils: l.snils,
                }),
                meta(
                    SourceKind::CivilRegistry,
                    record.office.as_str(),
                    "egr-zags",
                ),
            )),
            Origin::Arrival { .. } => None,
        }
    }

    /// Stage 2: births from the civil registry and arrivals from other regions; then the births
    /// reported twice and SNILS recorded later.
    pub(crate) fn birth_waves(&self) -> Vec<Vec<Item>> {
        let mut first = Vec::with_capacity(self.learners.len());
        for (i, l) in self.learners.iter().enumerate() {
            match &l.origin {
                Origin::Birth { .. } => first.extend(self.birth_command(i)),
                Origin::Arrival { document } => {
                    let meta = match self.home_org(i) {
                        Some(org) => self.org_meta(org, "org-operator"),
                        None => meta(SourceKind::Region, REGION, "region-operator"),
                    };
                    first.push(item(
                        Command::RegisterLearner(LearnerRegistered {
                            learner_id: l.id,
                            person: l.name.clone(),
                            sex: l.sex,
                            birth_date: l.birth,
                            document: document.clone(),
                            snils: l.snils,
                        }),
                        meta,
                    ));
                }
            }
        }
        let mut second: Vec<Item> = self
            .duplicates
            .iter()
            .filter_map(|&i| self.birth_command(i))
            .collect();
        for &(i, snils) in &self.late_snils {
            second.push(item(
                Command::RecordSnils(SnilsRecorded {
                    learner_id: self.learners[i].id,
                    snils,
                }),
                meta(
                    SourceKind::Region,
                    "Социальный фонд России (СМЭВ)",
                    "sfr-exchange",
                ),
            ));
        }
        vec![first, second]
    }

    /// Stage 3: parents linked by SNILS with consent.
    pub(crate) fn guardian_waves(&self) -> Vec<Vec<Item>> {
        let mut links = Vec::new();
        for (i, l) in self.learners.iter().enumerate() {
            let family = &self.families[l.family];
            let meta = match self.home_org(i) {
                Some(org) => self.org_meta(org, "org-operator"),
                None => meta(SourceKind::Portal, PORTAL, "epgu"),
            };
            let parents = [
                (l.link_mother, family.mother.as_ref()),
                (l.link_father, family.father.as_ref()),
            ];
            for (k, (link, guardian)) in parents.into_iter().enumerate() {
                let (true, Some(g)) = (link, guardian) else {
                    continue;
                };
                links.push(item(
                    Command::LinkGuardian(GuardianLinked {
                        learner_id: l.id,
                        guardian_snils: g.snils,
                        guardian: g.name.clone(),
                        relation: g.relation,
                        consent: Consent {
                            given_on: l.consent,
                            document: text(&format!(
                                "Согласие на обработку персональных данных № {}/{}",
                                i + 1,
                                k + 1
                            )),
                        },
                    }),
                    meta.clone(),
                ));
            }
        }
        vec![links]
    }

    fn application(&self, a: &crate::plan::AppP) -> Item {
        item(
            Command::SubmitApplication(ApplicationSubmitted {
                application_id: a.id,
                learner_id: self.learners[a.learner].id,
                organization_id: self.orgs[a.org].id,
                level: a.level,
                academic_year: a.year,
                grade: a.grade,
                class_id: None,
                submitted_on: a.submitted_on,
                desired_start: a.desired_start,
                priority: a.priority,
            }),
            meta(SourceKind::Portal, PORTAL, "epgu"),
        )
    }

    fn decision(&self, d: &Decision) -> Item {
        match d {
            Decision::Withdraw { app, date, reason } => item(
                Command::WithdrawApplication(WithdrawApplication {
                    application_id: *app,
                    withdrawn_on: *date,
                    reason: Some(text(reason)),
                }),
                meta(SourceKind::Portal, PORTAL, "epgu"),
            ),
            Decision::Reject {
                app,
                org,
                date,
                reason,
            } => item(
                Command::RejectApplication(RejectApplication {
                    application_id: *app,
                    rejected_on: *date,
                    reason: text(reason),
                }),
                self.org_meta(*org, "org-operator"),
            ),
        }
    }

    fn enrollment(&self, e: &EnrollP) -> Item {
        let class = &self.classes[e.class];
        item(
            Command::Enroll(Enroll {
                enrollment_id: e.id,
                learner_id: self.learners[e.learner].id,
                class_id: class.id,
                programme: Programme {
                    name: text(&class.programme),
                    adapted: e.adapted,
                    focus: e.focus.map(text),
                },
                primary: e.primary,
                form: EducationForm::FullTime,
                enrolled_on: e.date,
                order: e.order.clone(),
                application_id: e.application,
                age_exemption: e.exemption.as_deref().map(text),
            }),
            self.org_meta(class.key.org, "org-operator"),
        )
    }

    fn transfer_item(&self, t: &TransferP) -> Item {
        let to = &self.classes[t.to_class];
        item(
            Command::Transfer(Transfer {
                learner_id: self.learners[t.learner].id,
                enrollment_id: t.enrollment,
                kind: t.kind,
                to_class_id: to.id,
                to_enrollment_id: t.to_enrollment,
                transferred_on: t.date,
                order: t.order.clone(),
            }),
            self.org_meta(to.key.org, "org-operator"),
        )
    }

    fn leave_item(&self, l: &LeaveP) -> Item {
        item(
            Command::Leave(Leave {
                learner_id: self.learners[l.learner].id,
                enrollment_id: l.enrollment,
                left_on: l.date,
                reason: l.reason,
                order: l.order.clone(),
                certificate: l.certificate.clone(),
            }),
            self.org_meta(l.org, "org-operator"),
        )
    }

    /// Stage 4: the kindergarten queue of the previous year, then its withdrawals and rejections.
    pub(crate) fn application_waves(&self) -> Vec<Vec<Item>> {
        vec![
            self.apps_prev.iter().map(|a| self.application(a)).collect(),
            self.decisions_prev
                .iter()
                .map(|d| self.decision(d))
                .collect(),
        ]
    }

    /// Stage 5: enrollments of the previous year.
    pub(crate) fn enrollment_waves(&self) -> Vec<Vec<Item>> {
        vec![self
            .enroll_prev
            .iter()
            .map(|e| self.enrollment(e))
            .collect()]
    }

    /// Stage 7: movements during the previous year, and teachers replaced at the new year (the
    /// one leaving and the one taking over are different accounts, so both fit in one wave).
    pub(crate) fn transfer_waves(&self) -> Vec<Vec<Item>> {
        let mut wave: Vec<Item> = self
            .transfers_mid
            .iter()
            .map(|t| self.transfer_item(t))
            .collect();
        wave.extend(self.leaves_mid.iter().map(|l| self.leave_item(l)));
        for r in &self.replacements {
            let class = &self.classes[r.class];
            let ended = &class.teachers[r.ended];
            wave.push(item(
                Command::UnassignTeacher(UnassignTeacher {
                    class_id: class.id,
                    teacher: text(&self.teachers[ended.teacher].account),
                    until: ended.until.unwrap_or(ended.from),
                }),
                self.org_meta(class.key.org, "org-operator"),
            ));
            wave.push(self.assignment(r.class, r.started));
        }
        vec![wave]
    }

    /// Stage 8: state exams in June.
    pub(crate) fn exam_waves(&self) -> Vec<Vec<Item>> {
        vec![self
            .exams
            .iter()
            .map(|x| {
                item(
                    Command::RecordExamResult(RecordExamResult {
                        learner_id: self.learners[x.learner].id,
                        form: x.form,
                        subject: text(x.subject),
                        exam_date: x.date,
                        primary_points: x.primary,
                        test_score: x.test_score,
                        mark: x.mark,
                    }),
                    meta(SourceKind::ExamCentre, EXAM_CENTRE, "rcoi"),
                )
            })
            .collect()]
    }

    /// Stage 9: leaving at the end of the year: graduates, kindergarten leavers, clubs.
    pub(crate) fn leaver_waves(&self) -> Vec<Vec<Item>> {
        vec![self
            .leaves_year_end
            .iter()
            .map(|l| self.leave_item(l))
            .collect()]
    }

    /// Stage 10: the new year — applications, next-grade transfers and admissions, then the
    /// enrollments that satisfy applications and the other decisions on them.
    pub(crate) fn year_end_waves(&self) -> Vec<Vec<Item>> {
        let mut first: Vec<Item> = self.apps_cur.iter().map(|a| self.application(a)).collect();
        first.extend(self.transfers_next.iter().map(|t| self.transfer_item(t)));
        first.extend(self.enroll_cur.iter().map(|e| self.enrollment(e)));
        let mut second: Vec<Item> = self
            .enroll_cur_app
            .iter()
            .map(|e| self.enrollment(e))
            .collect();
        second.extend(self.decisions_cur.iter().map(|d| self.decision(d)));
        vec![first, second]
    }

    /// Stage 12: commands the registry must refuse — each breaks one rule.
    pub(crate) fn refusal_waves(&self) -> Vec<Vec<Item>> {
        let mut rng = self.extra_rng();
        let today = self.today;
        let cur_classes: Vec<usize> = (0..self.classes.len())
            .filter(|&c| self.classes[c].key.year == self.cur)
            .collect();
        let mut first = Vec::new();
        let mut second = Vec::new();

        // An enrollment into a full group: the group loses places, then a child is offered one.
        let full = cur_classes
            .iter()
            .copied()
            .filter(|&c| {
                self.classes[c].key.level == Level::Preschool && self.classes[c].joined > 0
            })
            .max_by_key(|&c| (self.classes[c].joined, std::cmp::Reverse(c)))
            .or_else(|| {
                cur_classes
                    .iter()
                    .copied()
                    .filter(|&c| self.classes[c].joined > 0)
                    .max_by_key(|&c| (self.classes[c].joined, std::cmp::Reverse(c)))
            });
        if let Some(full) = full {
            let class = &self.classes[full];
            first.push(item(
                Command::ChangeClassCapacity(ChangeClassCapacity {
                    class_id: class.id,
                    capacity: class.joined,
                    reason: Some(text(
                        "Сокращение числа мест по предписанию Роспотребнадзора",
                    )),
                }),
                self.org_meta(class.key.org, "org-operator"),
            ));
            let waiting = self
                .apps_cur
                .iter()
                .find(|a| {
                    a.org == class.key.org
                        && a.level == class.key.level
                        && !self
                            .enroll_cur_app
                            .iter()
                            .any(|e| e.application == Some(a.id))
                        && !self.decisions_cur.iter().any(|d| match d {
                            Decision::Withdraw { app, .. } | Decision::Reject { app, .. } => {
                                *app == a.id
                            }
                        })
                })
                .map(|a| (a.learner, Some(a.id)));
            let (learner, application) = waiting.unwrap_or_else(|| {
                let outsider = (0..self.learners.len())
                    .find(|&i| !class.members.iter().any(|m| m.learner == i))
                    .unwrap_or(0);
                (outsider, None)
            });
            second.push(Item {
                command: Command::Enroll(Enroll {
                    enrollment_id: EnrollmentId::from_uuid(uuid(&mut rng)),
                    learner_id: self.learners[learner].id,
                    class_id: class.id,
                    programme: Programme {
                        name: text(&class.programme),
                        adapted: false,
                        focus: None,
                    },
                    primary: true,
                    form: EducationForm::FullTime,
                    enrolled_on: today,
                    order: contingent_domain::Order {
                        number: text("999-в"),
                        date: today,
                    },
                    application_id: application,
                    age_exemption: None,
                }),
                meta: self.org_meta(class.key.org, "org-operator"),
                expect: Some("class_full"),
            });
        }

        // School classes of the current year with pupils.
        let schools: Vec<usize> = cur_classes
            .iter()
            .copied()
            .filter(|&c| {
                let k = self.classes[c].key;
                k.level == Level::General && k.grade >= 2 && !self.classes[c].members.is_empty()
            })
            .collect();
        let last_school_day = crate::marks::school_days(self.cur.first_day(), today)
            .last()
            .copied();
        if let (Some(&a), Some(day)) = (schools.first(), last_school_day) {
            let class_a = &self.classes[a];
            let pupil = class_a.members[0].learner;
            let org = class_a.key.org;
            let (teacher, account) = self.marker(a, "Математика", day);
            let (teacher, account) = (teacher.to_owned(), account.to_owned());
            let mark = |class_id, date, rng: &mut rand_chacha::ChaCha8Rng| {
                Command::RecordMark(MarkRecorded {
                    mark_id: MarkId::from_uuid(uuid(rng)),
                    learner_id: self.learners[pupil].id,
                    class_id,
                    subject: text("Математика"),
                    lesson_date: date,
                    kind: MarkKind::Current,
                    work: text("ответ на уроке"),
                    period: None,
                    value: Mark::Four,
                    weight: 1,
                    teacher: text(&teacher),
                })
            };
            // A mark for a pupil of another class.
            if let Some(&b) = schools
                .iter()
                .find(|&&b| b != a && !self.classes[b].members.iter().any(|m| m.learner == pupil))
            {
                second.push(Item {
                    command: mark(self.classes[b].id, day, &mut rng),
                    meta: self.org_meta(self.classes[b].key.org, &account),
                    expect: Some("learner_not_in_class"),
                });
            }
            // A mark dated ten days ahead — of the registry's clock too, which decides what the
            // future is, should `today` lie behind it.
            let ahead = plus(today.max(chrono::Utc::now().date_naive()), 10);
            second.push(Item {
                command: mark(class_a.id, ahead, &mut rng),
                meta: self.org_meta(org, &account),
                expect: Some("date_in_future"),
            });
            // A second primary general enrollment, in another school's class with free places.
            // (In a region of one school, another class of the same school.)
            let free = |c: &&usize| {
                let k = self.classes[**c].key;
                k.level == Level::General
                    && **c != a
                    && self.classes[**c].joined < self.classes[**c].capacity
            };
            let elsewhere = cur_classes
                .iter()
                .filter(free)
                .find(|&&c| self.classes[c].key.org != org);
            if let Some(&c) = elsewhere.or_else(|| cur_classes.iter().find(free)) {
                let class_c = &self.classes[c];
                second.push(Item {
                    command: Command::Enroll(Enroll {
                        enrollment_id: EnrollmentId::from_uuid(uuid(&mut rng)),
                        learner_id: self.learners[pupil].id,
                        class_id: class_c.id,
                        programme: Programme {
                            name: text(&class_c.programme),
                            adapted: false,
                            focus: None,
                        },
                        primary: true,
                        form: EducationForm::FullTime,
                        enrolled_on: today,
                        order: contingent_domain::Order {
                            number: text("998-у"),
                            date: today,
                        },
                        application_id: None,
                        age_exemption: None,
                    }),
                    meta: self.org_meta(class_c.key.org, "org-operator"),
                    expect: Some("second_primary_enrollment"),
                });
            }
        }
        vec![first, second]
    }

    /// An attendance record.
    pub(crate) fn attendance(
        &self,
        learner: usize,
        class: usize,
        date: chrono::NaiveDate,
        lesson: Option<u8>,
        status: contingent_domain::Attendance,
    ) -> Item {
        // The class teacher: the first teacher assigned who teaches the class on the day.
        let actor = self.classes[class]
            .teachers
            .iter()
            .find(|a| a.covers(date))
            .map_or("class-teacher", |a| {
                self.teachers[a.teacher].account.as_str()
            });
        item(
            Command::RecordAttendance(AttendanceRecorded {
                learner_id: self.learners[learner].id,
                class_id: self.classes[class].id,
                date,
                lesson,
                status,
            }),
            self.org_meta(self.classes[class].key.org, actor),
        )
    }
}
