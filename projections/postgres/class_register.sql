-- Class register per class: roster on a date, marks grid, attendance grid.
CREATE TABLE IF NOT EXISTS class_register_classes (
    class_id        TEXT COLLATE "C" PRIMARY KEY,
    organization_id TEXT COLLATE "C" NOT NULL,
    academic_year   TEXT COLLATE "C" NOT NULL,
    level           TEXT COLLATE "C" NOT NULL,
    grade           BIGINT NOT NULL,
    name            TEXT COLLATE "C" NOT NULL,
    capacity        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS class_register_classes_by_organization ON class_register_classes (organization_id, academic_year);

CREATE TABLE IF NOT EXISTS class_register_people (
    learner_id TEXT COLLATE "C" PRIMARY KEY,
    surname    TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    patronymic TEXT COLLATE "C"
);

CREATE TABLE IF NOT EXISTS class_register_roster (
    class_id   TEXT COLLATE "C" NOT NULL,
    learner_id TEXT COLLATE "C" NOT NULL,
    from_date  TEXT COLLATE "C" NOT NULL,
    until_date TEXT COLLATE "C",              -- first day no longer in the class
    PRIMARY KEY (class_id, learner_id, from_date)
);
CREATE INDEX IF NOT EXISTS class_register_roster_open ON class_register_roster (learner_id) WHERE until_date IS NULL;

CREATE TABLE IF NOT EXISTS class_register_marks (
    mark_id     TEXT COLLATE "C" PRIMARY KEY,
    class_id    TEXT COLLATE "C" NOT NULL,
    learner_id  TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    lesson_date TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    weight      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS class_register_marks_by_class ON class_register_marks (class_id, lesson_date);

CREATE TABLE IF NOT EXISTS class_register_attendance (
    position   BIGINT PRIMARY KEY,
    class_id   TEXT COLLATE "C" NOT NULL,
    learner_id TEXT COLLATE "C" NOT NULL,
    date       TEXT COLLATE "C" NOT NULL,
    lesson     BIGINT,
    status     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS class_register_attendance_by_class ON class_register_attendance (class_id, date);
