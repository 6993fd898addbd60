-- Register of learners: identity, status, current enrollments, movement history, guardians.
CREATE TABLE IF NOT EXISTS register_learners (
    learner_id    TEXT COLLATE "C" PRIMARY KEY,
    surname       TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    patronymic    TEXT COLLATE "C",
    sex           TEXT COLLATE "C" NOT NULL,
    birth_date    TEXT COLLATE "C" NOT NULL,
    snils         TEXT COLLATE "C",
    birth_record  TEXT COLLATE "C",           -- "office, record number, record date" for births in the region
    document      TEXT COLLATE "C",           -- identity document of learners registered from documents
    status        TEXT COLLATE "C" NOT NULL,  -- registered | enrolled | left | deceased
    status_since  TEXT COLLATE "C",
    died_on       TEXT COLLATE "C",
    first_position BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS register_learners_by_snils ON register_learners (snils) WHERE snils IS NOT NULL;
CREATE INDEX IF NOT EXISTS register_learners_by_name ON register_learners (surname, name, birth_date);

CREATE TABLE IF NOT EXISTS register_organizations (
    organization_id TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT COLLATE "C" NOT NULL,
    municipality    TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL,
    levels          TEXT COLLATE "C" NOT NULL  -- comma-separated
);

CREATE TABLE IF NOT EXISTS register_classes (
    class_id        TEXT COLLATE "C" PRIMARY KEY,
    organization_id TEXT COLLATE "C" NOT NULL,
    academic_year   TEXT COLLATE "C" NOT NULL,
    level           TEXT COLLATE "C" NOT NULL,
    grade           BIGINT NOT NULL,
    name            TEXT COLLATE "C" NOT NULL
);

CREATE TABLE IF NOT EXISTS register_enrollments (
    enrollment_id   TEXT COLLATE "C" PRIMARY KEY,
    learner_id      TEXT COLLATE "C" NOT NULL,
    organization_id TEXT COLLATE "C" NOT NULL,
    class_id        TEXT COLLATE "C" NOT NULL,
    level           TEXT COLLATE "C" NOT NULL,
    grade           BIGINT NOT NULL,
    academic_year   TEXT COLLATE "C" NOT NULL,
    programme       TEXT COLLATE "C" NOT NULL,
    adapted         BIGINT NOT NULL,
    focus           TEXT COLLATE "C",
    is_primary      BIGINT NOT NULL,
    form            TEXT COLLATE "C" NOT NULL,
    enrolled_on     TEXT COLLATE "C" NOT NULL,
    order_number    TEXT COLLATE "C" NOT NULL,
    order_date      TEXT COLLATE "C" NOT NULL,
    ended_on        TEXT COLLATE "C",
    end_reason      TEXT COLLATE "C"
);
CREATE INDEX IF NOT EXISTS register_enrollments_by_learner ON register_enrollments (learner_id);
CREATE INDEX IF NOT EXISTS register_enrollments_by_organization ON register_enrollments (organization_id, ended_on);

CREATE TABLE IF NOT EXISTS register_movements (
    position             BIGINT PRIMARY KEY,
    learner_id           TEXT COLLATE "C" NOT NULL,
    date                 TEXT COLLATE "C" NOT NULL,
    kind                 TEXT COLLATE "C" NOT NULL,  -- enrolled | within_organization | next_grade | to_other_organization | left | died
    from_organization_id TEXT COLLATE "C",
    from_class_id        TEXT COLLATE "C",
    to_organization_id   TEXT COLLATE "C",
    to_class_id          TEXT COLLATE "C",
    reason               TEXT COLLATE "C",
    order_number         TEXT COLLATE "C"
);
CREATE INDEX IF NOT EXISTS register_movements_by_learner ON register_movements (learner_id, position);

CREATE TABLE IF NOT EXISTS register_guardians (
    learner_id       TEXT COLLATE "C" NOT NULL,
    guardian_snils   TEXT COLLATE "C" NOT NULL,
    surname          TEXT COLLATE "C" NOT NULL,
    name             TEXT COLLATE "C" NOT NULL,
    patronymic       TEXT COLLATE "C",
    relation         TEXT COLLATE "C" NOT NULL,
    consent_given_on TEXT COLLATE "C" NOT NULL,
    consent_document TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (learner_id, guardian_snils)
);
CREATE INDEX IF NOT EXISTS register_guardians_by_snils ON register_guardians (guardian_snils);
