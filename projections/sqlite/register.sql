-- Register of learners: identity, status, current enrollments, movement history, guardians.
CREATE TABLE IF NOT EXISTS register_learners (
    learner_id    TEXT PRIMARY KEY,
    surname       TEXT NOT NULL,
    name          TEXT NOT NULL,
    patronymic    TEXT,
    sex           TEXT NOT NULL,
    birth_date    TEXT NOT NULL,
    snils         TEXT,
    birth_record  TEXT,            -- "office, record number, record date" for births in the region
    document      TEXT,            -- identity document of learners registered from documents
    status        TEXT NOT NULL,   -- registered | enrolled | left | deceased
    status_since  TEXT,
    died_on       TEXT,
    first_position INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS register_learners_by_snils ON register_learners (snils) WHERE snils IS NOT NULL;
CREATE INDEX IF NOT EXISTS register_learners_by_name ON register_learners (surname, name, birth_date);

CREATE TABLE IF NOT EXISTS register_organizations (
    organization_id TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    municipality    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    levels          TEXT NOT NULL  -- comma-separated
) STRICT;

CREATE TABLE IF NOT EXISTS register_classes (
    class_id        TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    academic_year   TEXT NOT NULL,
    level           TEXT NOT NULL,
    grade           INTEGER NOT NULL,
    name            TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS register_enrollments (
    enrollment_id   TEXT PRIMARY KEY,
    learner_id      TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    class_id        TEXT NOT NULL,
    level           TEXT NOT NULL,
    grade           INTEGER NOT NULL,
    academic_year   TEXT NOT NULL,
    programme       TEXT NOT NULL,
    adapted         INTEGER NOT NULL,
    focus           TEXT,
    is_primary      INTEGER NOT NULL,
    form            TEXT NOT NULL,
    enrolled_on     TEXT NOT NULL,
    order_number    TEXT NOT NULL,
    order_date      TEXT NOT NULL,
    ended_on        TEXT,
    end_reason      TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS register_enrollments_by_learner ON register_enrollments (learner_id);
CREATE INDEX IF NOT EXISTS register_enrollments_by_organization ON register_enrollments (organization_id, ended_on);

CREATE TABLE IF NOT EXISTS register_movements (
    position             INTEGER PRIMARY KEY,
    learner_id           TEXT NOT NULL,
    date                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,  -- enrolled | within_organization | next_grade | to_other_organization | left | died
    from_organization_id TEXT,
    from_class_id        TEXT,
    to_organization_id   TEXT,
    to_class_id          TEXT,
    reason               TEXT,
    order_number         TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS register_movements_by_learner ON register_movements (learner_id, position);

CREATE TABLE IF NOT EXISTS register_guardians (
    learner_id       TEXT NOT NULL,
    guardian_snils   TEXT NOT NULL,
    surname          TEXT NOT NULL,
    name             TEXT NOT NULL,
    patronymic       TEXT,
    relation         TEXT NOT NULL,
    consent_given_on TEXT NOT NULL,
    consent_document TEXT NOT NULL,
    PRIMARY KEY (learner_id, guardian_snils)
) STRICT;
CREATE INDEX IF NOT EXISTS register_guardians_by_snils ON register_guardians (guardian_snils);
