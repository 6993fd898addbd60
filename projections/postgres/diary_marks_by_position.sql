-- Marks in the order they were recorded: keyed by the position of their mark_recorded event, so
-- each new mark is appended at the end of the table instead of at a random place in an index of
-- mark ids; a correction is a row of diary_mark_corrections, keyed by the mark it corrects, which
-- the diary joins. The diary is rebuilt from the log (its position is forgotten).
DROP TABLE IF EXISTS diary_marks;
CREATE TABLE diary_marks (
    position    BIGINT PRIMARY KEY,     -- of the mark_recorded event
    mark_id     TEXT COLLATE "C" NOT NULL,
    learner_id  TEXT COLLATE "C" NOT NULL,
    class_id    TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    lesson_date TEXT COLLATE "C" NOT NULL,
    period      TEXT COLLATE "C" NOT NULL,    -- the period given, or the term the lesson date falls in
    kind        TEXT COLLATE "C" NOT NULL,    -- current | period | annual | final
    work        TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,    -- as recorded
    points      BIGINT,                 -- 2..5, NULL for pass/fail
    weight      BIGINT NOT NULL,
    teacher     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX diary_marks_by_learner ON diary_marks (learner_id, subject, lesson_date);

CREATE TABLE IF NOT EXISTS diary_mark_corrections (
    mark_id     TEXT COLLATE "C" PRIMARY KEY,
    value       TEXT COLLATE "C" NOT NULL,    -- the value after the last correction
    points      BIGINT,
    corrections BIGINT NOT NULL         -- how many times the mark was corrected
);

DELETE FROM diary_attendance;
DELETE FROM diary_exams;
DELETE FROM projection_positions WHERE projection = 'diary';
