-- The register in the federal segment's shape: learner id, sex, year of birth and education
-- facts only; no names, SNILS, documents or guardians.
CREATE TABLE IF NOT EXISTS federal_organizations (
    organization_id TEXT PRIMARY KEY,
    municipality    TEXT NOT NULL,
    kind            TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS federal_learners (
    learner_id   TEXT PRIMARY KEY,
    sex          TEXT NOT NULL,
    birth_year   INTEGER NOT NULL,
    status       TEXT NOT NULL,      -- registered | enrolled | left | deceased
    last_position INTEGER NOT NULL   -- the last event that changed this row
) STRICT;

CREATE TABLE IF NOT EXISTS federal_enrollments (
    enrollment_id   TEXT PRIMARY KEY,
    learner_id      TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    municipality    TEXT NOT NULL,
    level           TEXT NOT NULL,
    grade           INTEGER NOT NULL,
    academic_year   TEXT NOT NULL,
    form            TEXT NOT NULL,
    adapted         INTEGER NOT NULL,
    enrolled_on     TEXT NOT NULL,
    ended_on        TEXT,
    end_reason      TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS federal_enrollments_by_learner ON federal_enrollments (learner_id);
CREATE INDEX IF NOT EXISTS federal_enrollments_active ON federal_enrollments (municipality, organization_id, level, grade) WHERE ended_on IS NULL;
