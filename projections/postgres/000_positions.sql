-- Where each projection stands in the log. Updated in the same transaction as its rows.
-- PostgreSQL twin of projections/sqlite/000_positions.sql: the same tables and columns, INTEGER as
-- BIGINT, text compared and sorted bytewise (COLLATE "C") as SQLite does.
CREATE TABLE IF NOT EXISTS projection_positions (
    projection TEXT COLLATE "C" PRIMARY KEY,
    position   BIGINT NOT NULL
);
