-- A learner's marks read from the index alone, as before (see diary_by_learner_and_date), but
-- with the month of the lesson date (its first seven characters, 'YYYY-MM') ahead of the learner
-- in the key. Marks arrive in nearly the order of their lesson dates, so new entries land in the
-- current month's part of the index, a small part of it, instead of at each learner's own place
-- in an index as large as the whole history: a page one batch changes is likely to be changed by
-- many of its marks, and by the next batches, and is written for many entries instead of one. A
-- diary names its months (a year's twelve), each a seek. Attendance keeps its index by learner
-- and date: it records absences and lateness only, a few per learner a year, not a mark a lesson.
DROP INDEX IF EXISTS diary_marks_by_learner_date;
CREATE INDEX IF NOT EXISTS diary_marks_by_month ON diary_marks
    (substr(lesson_date, 1, 7), learner_id, lesson_date, subject, period, kind, work, value, points,
     weight, teacher, mark_id);
