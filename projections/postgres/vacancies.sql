-- Vacancies and queues per organization and class or group.
CREATE TABLE IF NOT EXISTS vacancy_organizations (
    organization_id TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT COLLATE "C" NOT NULL,
    municipality    TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL
);

CREATE TABLE IF NOT EXISTS vacancy_classes (
    class_id        TEXT COLLATE "C" PRIMARY KEY,
    organization_id TEXT COLLATE "C" NOT NULL,
    academic_year   TEXT COLLATE "C" NOT NULL,
    level           TEXT COLLATE "C" NOT NULL,
    grade           BIGINT NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    stay_mode       TEXT COLLATE "C",
    capacity        BIGINT NOT NULL,
    enrolled        BIGINT NOT NULL,
    CHECK (enrolled >= 0 AND enrolled <= capacity)
);
CREATE INDEX IF NOT EXISTS vacancy_classes_by_organization ON vacancy_classes (organization_id, academic_year);

-- Who takes a place where, so leaving and death free the right place.
CREATE TABLE IF NOT EXISTS vacancy_placements (
    enrollment_id TEXT COLLATE "C" PRIMARY KEY,
    learner_id    TEXT COLLATE "C" NOT NULL,
    class_id      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS vacancy_placements_by_learner ON vacancy_placements (learner_id);

CREATE TABLE IF NOT EXISTS vacancy_applications (
    application_id  TEXT COLLATE "C" PRIMARY KEY,
    learner_id      TEXT COLLATE "C" NOT NULL,
    organization_id TEXT COLLATE "C" NOT NULL,
    level           TEXT COLLATE "C" NOT NULL,
    academic_year   TEXT COLLATE "C" NOT NULL,
    grade           BIGINT NOT NULL,
    class_id        TEXT COLLATE "C",
    submitted_on    TEXT COLLATE "C" NOT NULL,
    desired_start   TEXT COLLATE "C",
    priority        TEXT COLLATE "C" NOT NULL,
    due_on          TEXT COLLATE "C" NOT NULL,  -- a decision is due by this date
    status          TEXT COLLATE "C" NOT NULL,  -- pending | withdrawn | rejected | accepted
    decided_on      TEXT COLLATE "C",
    reason          TEXT COLLATE "C"
);
CREATE INDEX IF NOT EXISTS vacancy_applications_by_organization ON vacancy_applications (organization_id, status, submitted_on);
