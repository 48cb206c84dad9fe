-- Affiliate resolution caches (issue 3, P5-P8). Owned by settlement/affiliates.py.
-- Both tables are derived from the current affiliation set and rebuilt per year by build_year_groups:
-- they are caches, not ledger, so a rebuild deletes and re-inserts the year's rows.

CREATE TABLE affiliate_groups (
    year INTEGER NOT NULL,
    party_id VARCHAR NOT NULL,
    group_id VARCHAR NOT NULL,
    affiliation_load_id BIGINT
);
COMMENT ON TABLE affiliate_groups IS 'Year-graph affiliate groups (P7, P8 second bullet): one row per party named by a record active on any in-scope day of the year; a party absent from the table is a group of its own.';
COMMENT ON COLUMN affiliate_groups.year IS 'Settlement year (P3).';
COMMENT ON COLUMN affiliate_groups.party_id IS 'Credit code or P: person id (P4).';
COMMENT ON COLUMN affiliate_groups.group_id IS 'Smallest party_id of the party''s connected component in the year graph (P7).';
COMMENT ON COLUMN affiliate_groups.affiliation_load_id IS 'registry_loads.load_id of the affiliation set the groups were computed from.';

CREATE TABLE affiliate_day_groups (
    year INTEGER NOT NULL,
    party_id VARCHAR NOT NULL,
    day_from DATE NOT NULL,
    day_to DATE NOT NULL,
    group_id VARCHAR NOT NULL,
    affiliation_load_id BIGINT
);
COMMENT ON TABLE affiliate_day_groups IS 'Trade-date affiliate groups (P7, P8 first bullet): for each party of the year graph, its group on every in-scope day of the year as non-overlapping date intervals. Two parties are related on day d when both have a row covering d with the same group_id.';
COMMENT ON COLUMN affiliate_day_groups.year IS 'Settlement year (P3).';
COMMENT ON COLUMN affiliate_day_groups.party_id IS 'Credit code or P: person id (P4).';
COMMENT ON COLUMN affiliate_day_groups.day_from IS 'First day of the interval (inclusive).';
COMMENT ON COLUMN affiliate_day_groups.day_to IS 'Last day of the interval (inclusive).';
COMMENT ON COLUMN affiliate_day_groups.group_id IS 'Smallest party_id of the party''s component in the graph of the records active on those days (P7); equal to party_id when it is alone.';
COMMENT ON COLUMN affiliate_day_groups.affiliation_load_id IS 'registry_loads.load_id of the affiliation set the groups were computed from.';
