-- Diary per learner: marks by subject and period, attendance, exam results.
CREATE TABLE IF NOT EXISTS diary_marks (
    mark_id     TEXT PRIMARY KEY,
    learner_id  TEXT NOT NULL,
    class_id    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    lesson_date TEXT NOT NULL,
    period      TEXT NOT NULL,   -- the period given, or the term the lesson date falls in
    kind        TEXT NOT NULL,   -- current | period | annual | final
    work        TEXT NOT NULL,
    value       TEXT NOT NULL,
    points      INTEGER,         -- 2..5, NULL for pass/fail
    weight      INTEGER NOT NULL,
    teacher     TEXT NOT NULL,
    corrections INTEGER NOT NULL DEFAULT 0,
    original_value TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS diary_marks_by_learner ON diary_marks (learner_id, subject, lesson_date);

CREATE TABLE IF NOT EXISTS diary_attendance (
    position   INTEGER PRIMARY KEY,
    learner_id TEXT NOT NULL,
    class_id   TEXT NOT NULL,
    date       TEXT NOT NULL,
    lesson     INTEGER,
    status     TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS diary_attendance_by_learner ON diary_attendance (learner_id, date);

CREATE TABLE IF NOT EXISTS diary_exams (
    position       INTEGER PRIMARY KEY,
    learner_id     TEXT NOT NULL,
    form           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    exam_date      TEXT NOT NULL,
    grade          INTEGER NOT NULL,
    primary_points INTEGER NOT NULL,
    test_score     INTEGER,
    mark           TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS diary_exams_by_learner ON diary_exams (learner_id, exam_date);
