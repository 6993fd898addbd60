-- The register in the federal segment's shape: learner id, sex, year of birth and education
-- facts only; no names, SNILS, documents or guardians.
CREATE TABLE IF NOT EXISTS federal_organizations (
    organization_id TEXT COLLATE "C" PRIMARY KEY,
    municipality    TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL
);

CREATE TABLE IF NOT EXISTS federal_learners (
    learner_id    TEXT COLLATE "C" PRIMARY KEY,
    sex           TEXT COLLATE "C" NOT NULL,
    birth_year    BIGINT NOT NULL,
    status        TEXT COLLATE "C" NOT NULL,   -- registered | enrolled | left | deceased
    last_position BIGINT NOT NULL              -- the last event that changed this row
);

CREATE TABLE IF NOT EXISTS federal_enrollments (
    enrollment_id   TEXT COLLATE "C" PRIMARY KEY,
    learner_id      TEXT COLLATE "C" NOT NULL,
    organization_id TEXT COLLATE "C" NOT NULL,
    municipality    TEXT COLLATE "C" NOT NULL,
    level           TEXT COLLATE "C" NOT NULL,
    grade           BIGINT NOT NULL,
    academic_year   TEXT COLLATE "C" NOT NULL,
    form            TEXT COLLATE "C" NOT NULL,
    adapted         BIGINT NOT NULL,
    enrolled_on     TEXT COLLATE "C" NOT NULL,
    ended_on        TEXT COLLATE "C",
    end_reason      TEXT COLLATE "C"
);
CREATE INDEX IF NOT EXISTS federal_enrollments_by_learner ON federal_enrollments (learner_id);
CREATE INDEX IF NOT EXISTS federal_enrollments_active ON federal_enrollments (municipality, organization_id, level, grade) WHERE ended_on IS NULL;
