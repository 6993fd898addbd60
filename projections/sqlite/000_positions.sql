-- Where each projection stands in the log. Updated in the same transaction as its rows.
CREATE TABLE IF NOT EXISTS projection_positions (
    projection TEXT PRIMARY KEY,
    position   INTEGER NOT NULL
) STRICT;
