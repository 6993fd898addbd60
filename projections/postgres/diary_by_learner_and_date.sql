-- A learner's diary read from the indexes alone: the marks of a learner within a span of dates
-- with every column the diary shows, and their attendance with its status, lesson and position,
-- both in (learner, date) order. A year's diary visits the year's entries only (and a table row
-- only where the visibility map does not yet say the page is all visible).
DROP INDEX IF EXISTS diary_marks_by_learner;
CREATE INDEX IF NOT EXISTS diary_marks_by_learner_date ON diary_marks (learner_id, lesson_date)
    INCLUDE (subject, period, kind, work, value, points, weight, teacher, mark_id);
DROP INDEX IF EXISTS diary_attendance_by_learner;
CREATE INDEX IF NOT EXISTS diary_attendance_by_learner_date ON diary_attendance (learner_id, date)
    INCLUDE (status, lesson, position);
