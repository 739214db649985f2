-- Runs record which process executes them and when it last showed signs of life, so a later start can
-- mark the runs of a dead process `abandoned` instead of leaving them `running` forever.
ALTER TABLE runs ADD COLUMN holder TEXT;
ALTER TABLE runs ADD COLUMN heartbeat_at BIGINT;
CREATE INDEX IF NOT EXISTS runs_running ON runs(outcome) WHERE outcome = 'running';
