-- Marks in the order they were recorded: keyed by the position of their mark_recorded event (see
-- diary_marks_by_position); a correction is a row of class_register_corrections. The class
-- register is rebuilt from the log (its position is forgotten).
DROP TABLE IF EXISTS class_register_marks;
CREATE TABLE class_register_marks (
    position    BIGINT PRIMARY KEY,     -- of the mark_recorded event
    mark_id     TEXT COLLATE "C" NOT NULL,
    class_id    TEXT COLLATE "C" NOT NULL,
    learner_id  TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    lesson_date TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,    -- as recorded
    weight      BIGINT NOT NULL
);
CREATE INDEX class_register_marks_by_class ON class_register_marks (class_id, lesson_date);

CREATE TABLE IF NOT EXISTS class_register_corrections (
    mark_id TEXT COLLATE "C" PRIMARY KEY,
    value   TEXT COLLATE "C" NOT NULL         -- the value after the last correction
);

DELETE FROM class_register_classes;
DELETE FROM class_register_people;
DELETE FROM class_register_roster;
DELETE FROM class_register_attendance;
DELETE FROM projection_positions WHERE projection = 'class_register';
