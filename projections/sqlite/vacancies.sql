-- Vacancies and queues per organization and class or group.
CREATE TABLE IF NOT EXISTS vacancy_organizations (
    organization_id TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    municipality    TEXT NOT NULL,
    kind            TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS vacancy_classes (
    class_id        TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    academic_year   TEXT NOT NULL,
    level           TEXT NOT NULL,
    grade           INTEGER NOT NULL,
    name            TEXT NOT NULL,
    stay_mode       TEXT,
    capacity        INTEGER NOT NULL,
    enrolled        INTEGER NOT NULL,
    CHECK (enrolled >= 0 AND enrolled <= capacity)
) STRICT;
CREATE INDEX IF NOT EXISTS vacancy_classes_by_organization ON vacancy_classes (organization_id, academic_year);

-- Who takes a place where, so leaving and death free the right place.
CREATE TABLE IF NOT EXISTS vacancy_placements (
    enrollment_id TEXT PRIMARY KEY,
    learner_id    TEXT NOT NULL,
    class_id      TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS vacancy_placements_by_learner ON vacancy_placements (learner_id);

CREATE TABLE IF NOT EXISTS vacancy_applications (
    application_id  TEXT PRIMARY KEY,
    learner_id      TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    level           TEXT NOT NULL,
    academic_year   TEXT NOT NULL,
    grade           INTEGER NOT NULL,
    class_id        TEXT,
    submitted_on    TEXT NOT NULL,
    desired_start   TEXT,
    priority        TEXT NOT NULL,
    due_on          TEXT NOT NULL,  -- a decision is due by this date
    status          TEXT NOT NULL,  -- pending | withdrawn | rejected | accepted
    decided_on      TEXT,
    reason          TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS vacancy_applications_by_organization ON vacancy_applications (organization_id, status, submitted_on);
