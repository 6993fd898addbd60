-- Marks in the order they were recorded: keyed by the position of their mark_recorded event, so
-- each new mark is appended at the end of the table instead of at a random place in an index of
-- mark ids; a correction is a row of diary_mark_corrections, keyed by the mark it corrects, which
-- the diary joins. The diary is rebuilt from the log (its position is forgotten).
DROP TABLE IF EXISTS diary_marks;
CREATE TABLE diary_marks (
    position    INTEGER PRIMARY KEY,     -- of the mark_recorded event
    mark_id     TEXT NOT NULL,
    learner_id  TEXT NOT NULL,
    class_id    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    lesson_date TEXT NOT NULL,
    period      TEXT NOT NULL,    -- the period given, or the term the lesson date falls in
    kind        TEXT NOT NULL,    -- current | period | annual | final
    work        TEXT NOT NULL,
    value       TEXT NOT NULL,    -- as recorded
    points      INTEGER,                 -- 2..5, NULL for pass/fail
    weight      INTEGER NOT NULL,
    teacher     TEXT NOT NULL
) STRICT;
CREATE INDEX diary_marks_by_learner ON diary_marks (learner_id, subject, lesson_date);

CREATE TABLE IF NOT EXISTS diary_mark_corrections (
    mark_id     TEXT PRIMARY KEY,
    value       TEXT NOT NULL,    -- the value after the last correction
    points      INTEGER,
    corrections INTEGER NOT NULL         -- how many times the mark was corrected
) STRICT;

DELETE FROM diary_attendance;
DELETE FROM diary_exams;
DELETE FROM projection_positions WHERE projection = 'diary';
