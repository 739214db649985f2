-- Holdout groups, lift and creative fatigue (DESIGN §6-§8, issue 11).
--
-- holdout_members: every member a sync with `holdout > 0` has assigned to a group, with when it was
-- first assigned (`since`, unix seconds). `grp = 'holdout'` members are never sent; 'treatment' members
-- are the audience. Lift compares the orders of the two groups in the days after `since`. Rows stay
-- when a member leaves the segment (intent-to-treat), and are rewritten only when the salt or share
-- of the sync changes the member's group.
CREATE TABLE IF NOT EXISTS holdout_members (
    destination   TEXT NOT NULL,
    audience_name TEXT NOT NULL,
    segment       TEXT NOT NULL,
    customer_id   TEXT NOT NULL,
    grp           TEXT NOT NULL CHECK (grp IN ('holdout', 'treatment')),
    since         BIGINT NOT NULL,
    run_id        BIGINT,
    PRIMARY KEY (destination, audience_name, customer_id)
);
CREATE INDEX IF NOT EXISTS holdout_members_segment ON holdout_members(segment, grp);

-- Membership history lookups of the KPIs ("when did this customer join / leave this segment").
CREATE INDEX IF NOT EXISTS segment_changes_customer ON segment_changes(segment, customer_id, run_id);

-- Why a rotation happened early (fatigue), NULL for a rotation at the end of its period.
ALTER TABLE creative_rotations ADD COLUMN reason TEXT;
