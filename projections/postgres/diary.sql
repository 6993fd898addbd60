-- Diary per learner: marks by subject and period, attendance, exam results.
CREATE TABLE IF NOT EXISTS diary_marks (
    mark_id     TEXT COLLATE "C" PRIMARY KEY,
    learner_id  TEXT COLLATE "C" NOT NULL,
    class_id    TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    lesson_date TEXT COLLATE "C" NOT NULL,
    period      TEXT COLLATE "C" NOT NULL,   -- the period given, or the term the lesson date falls in
    kind        TEXT COLLATE "C" NOT NULL,   -- current | period | annual | final
    work        TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    points      BIGINT,                      -- 2..5, NULL for pass/fail
    weight      BIGINT NOT NULL,
    teacher     TEXT COLLATE "C" NOT NULL,
    corrections BIGINT NOT NULL DEFAULT 0,
    original_value TEXT COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS diary_marks_by_learner ON diary_marks (learner_id, subject, lesson_date);

CREATE TABLE IF NOT EXISTS diary_attendance (
    position   BIGINT PRIMARY KEY,
    learner_id TEXT COLLATE "C" NOT NULL,
    class_id   TEXT COLLATE "C" NOT NULL,
    date       TEXT COLLATE "C" NOT NULL,
    lesson     BIGINT,
    status     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS diary_attendance_by_learner ON diary_attendance (learner_id, date);

CREATE TABLE IF NOT EXISTS diary_exams (
    position       BIGINT PRIMARY KEY,
    learner_id     TEXT COLLATE "C" NOT NULL,
    form           TEXT COLLATE "C" NOT NULL,
    subject        TEXT COLLATE "C" NOT NULL,
    exam_date      TEXT COLLATE "C" NOT NULL,
    grade          BIGINT NOT NULL,
    primary_points BIGINT NOT NULL,
    test_score     BIGINT,
    mark           TEXT COLLATE "C"
);
CREATE INDEX IF NOT EXISTS diary_exams_by_learner ON diary_exams (learner_id, exam_date);
