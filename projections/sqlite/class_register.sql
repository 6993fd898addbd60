-- Class register per class: roster on a date, marks grid, attendance grid.
CREATE TABLE IF NOT EXISTS class_register_classes (
    class_id        TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    academic_year   TEXT NOT NULL,
    level           TEXT NOT NULL,
    grade           INTEGER NOT NULL,
    name            TEXT NOT NULL,
    capacity        INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS class_register_classes_by_organization ON class_register_classes (organization_id, academic_year);

CREATE TABLE IF NOT EXISTS class_register_people (
    learner_id TEXT PRIMARY KEY,
    surname    TEXT NOT NULL,
    name       TEXT NOT NULL,
    patronymic TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS class_register_roster (
    class_id   TEXT NOT NULL,
    learner_id TEXT NOT NULL,
    from_date  TEXT NOT NULL,
    until_date TEXT,              -- first day no longer in the class
    PRIMARY KEY (class_id, learner_id, from_date)
) STRICT;
CREATE INDEX IF NOT EXISTS class_register_roster_open ON class_register_roster (learner_id) WHERE until_date IS NULL;

CREATE TABLE IF NOT EXISTS class_register_marks (
    mark_id     TEXT PRIMARY KEY,
    class_id    TEXT NOT NULL,
    learner_id  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    lesson_date TEXT NOT NULL,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    weight      INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS class_register_marks_by_class ON class_register_marks (class_id, lesson_date);

CREATE TABLE IF NOT EXISTS class_register_attendance (
    position   INTEGER PRIMARY KEY,
    class_id   TEXT NOT NULL,
    learner_id TEXT NOT NULL,
    date       TEXT NOT NULL,
    lesson     INTEGER,
    status     TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS class_register_attendance_by_class ON class_register_attendance (class_id, date);
