-- Settlement lifecycle (issue 11, CONTRACT "Settlement lifecycle", "Regulator views"): who started a run, the
-- append-only hash-chained lifecycle records (approve, reject, notice, objection, disbursement, payment) and
-- the regulator views that are right by default. Owned by ledgers/ (lifecycle_events, ledger_head columns,
-- run_states, entry_states) and settlement/lifecycle/ (the other views). Every column carries a COMMENT.

ALTER TABLE settlement_runs ADD COLUMN started_by VARCHAR;
COMMENT ON COLUMN settlement_runs.started_by IS 'Identity that started the run (settle run --by, default cli:<OS user>); the approver of the run must be another identity (four eyes). NULL for runs recorded before issue 11.';

ALTER TABLE ledger_head ADD COLUMN last_event_id BIGINT DEFAULT 0;
ALTER TABLE ledger_head ADD COLUMN last_event_hash VARCHAR DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
UPDATE ledger_head SET last_event_id = 0, last_event_hash = '0000000000000000000000000000000000000000000000000000000000000000';
COMMENT ON COLUMN ledger_head.last_event_id IS 'event_id of the last lifecycle_events record (0 = none).';
COMMENT ON COLUMN ledger_head.last_event_hash IS 'hash of the last lifecycle_events record (64 zeros = none).';

CREATE TABLE lifecycle_events (
    event_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    run_id BIGINT,
    ref VARCHAR,
    clause INTEGER,
    beneficiary_id VARCHAR,
    dataset_id VARCHAR,
    amount DECIMAL(18,2),
    actor VARCHAR,
    note VARCHAR,
    run_started_by VARCHAR,
    on_date DATE,
    until_date DATE,
    head_run_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);
COMMENT ON TABLE lifecycle_events IS 'Append-only, hash-chained records of the settlement lifecycle (issue 11): approve / reject of a run, notice lines, objections and their resolution, disbursement instructions and payment confirmations. Never updated or deleted; settle ledger verify recomputes every hash.';
COMMENT ON COLUMN lifecycle_events.event_id IS 'Record id, 1, 2, 3 ... without gaps, in chain order; an objection is named by its event_id.';
COMMENT ON COLUMN lifecycle_events.kind IS 'approve | reject (a run) | notice (a notice line) | objection | resolve (an objection) | disburse (a payment instruction line) | paid (bank confirmation of a batch).';
COMMENT ON COLUMN lifecycle_events.year IS 'Settlement year the record is about.';
COMMENT ON COLUMN lifecycle_events.run_id IS 'approve / reject: the run reviewed; NULL otherwise.';
COMMENT ON COLUMN lifecycle_events.ref IS 'notice: notice id; disburse / paid: batch id; resolve: the objection id (its event_id); NULL otherwise.';
COMMENT ON COLUMN lifecycle_events.clause IS 'notice / disburse: clause of the ledger key (6 or 7); NULL otherwise.';
COMMENT ON COLUMN lifecycle_events.beneficiary_id IS 'notice / disburse / objection: beneficiary of the key (owner or platform enterprise).';
COMMENT ON COLUMN lifecycle_events.dataset_id IS 'notice / disburse: dataset of the key ('''' for clause 7); objection: the dataset held, NULL = every line of the beneficiary in the year.';
COMMENT ON COLUMN lifecycle_events.amount IS 'notice: amount approved and noticed by this line; disburse: amount instructed (negative = recovery); CNY (P1).';
COMMENT ON COLUMN lifecycle_events.actor IS 'Who recorded it (--by); for notice and disburse the identity that issued the list.';
COMMENT ON COLUMN lifecycle_events.note IS 'approve: comment; reject: reason; objection: reason; resolve: upheld | dismissed; notice: working days of the period; disburse: payment | recovery.';
COMMENT ON COLUMN lifecycle_events.run_started_by IS 'approve / reject: settlement_runs.started_by of the run at review time (four eyes, verified).';
COMMENT ON COLUMN lifecycle_events.on_date IS 'notice: publication date; disburse: instruction date; paid: the bank''s payment date; local dates (P3).';
COMMENT ON COLUMN lifecycle_events.until_date IS 'notice: first day the line may be disbursed (the day after the last working day of the notice period; the publication date itself when the period is 0 days).';
COMMENT ON COLUMN lifecycle_events.head_run_id IS 'ledger_head.last_run_id when recorded: orders the record among runs (a run rejected before run R no longer counts in R''s deltas).';
COMMENT ON COLUMN lifecycle_events.created_at IS 'When the record was appended (UTC instant).';
COMMENT ON COLUMN lifecycle_events.prev_hash IS 'hash of the record before (event_id − 1); 64 zeros for the first.';
COMMENT ON COLUMN lifecycle_events.hash IS 'SHA-256 hex of the record''s canonical text and prev_hash (ledgers/events.py canonical_event_sql).';

CREATE VIEW run_states AS
WITH review AS (
    SELECT run_id, kind, actor, note, created_at FROM lifecycle_events WHERE kind IN ('approve', 'reject')
    QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY event_id) = 1
)
SELECT s.run_id, s.year, s.started_by, s.started_at, s.entries_appended AS entries,
       CASE WHEN v.kind = 'approve' THEN 'approved' WHEN v.kind = 'reject' THEN 'rejected'
            WHEN s.entries_appended = 0 THEN 'unchanged' ELSE 'proposed' END AS state,
       v.actor AS reviewed_by, v.created_at AS reviewed_at, v.note AS review_note
FROM settlement_runs s LEFT JOIN review v USING (run_id);
COMMENT ON VIEW run_states IS 'Every settlement run with its lifecycle state (CONTRACT settle runs list).';
COMMENT ON COLUMN run_states.run_id IS 'settlement_runs.run_id.';
COMMENT ON COLUMN run_states.year IS 'Settlement year.';
COMMENT ON COLUMN run_states.started_by IS 'Who started the run.';
COMMENT ON COLUMN run_states.started_at IS 'When it started (UTC instant).';
COMMENT ON COLUMN run_states.entries IS 'Ledger entries the run appended.';
COMMENT ON COLUMN run_states.state IS 'proposed (entries awaiting review) | approved | rejected | unchanged (appended nothing, nothing to review).';
COMMENT ON COLUMN run_states.reviewed_by IS 'Who approved or rejected it; NULL while proposed.';
COMMENT ON COLUMN run_states.reviewed_at IS 'When (UTC instant).';
COMMENT ON COLUMN run_states.review_note IS 'Approval comment or rejection reason.';

CREATE VIEW entry_states AS
SELECT e.entry_id, e.run_id, e.year, e.clause, e.beneficiary_id, e.dataset_id, e.amount, e.kind, e.created_at,
       CASE r.state WHEN 'approved' THEN 'approved' WHEN 'rejected' THEN 'rejected' ELSE 'proposed' END AS state,
       r.started_by, r.reviewed_by, r.reviewed_at
FROM ledger_entries e JOIN run_states r USING (run_id);
COMMENT ON VIEW entry_states IS 'Every ledger entry with the state of its run: proposed, approved or rejected (void: not part of the entitlement).';
COMMENT ON COLUMN entry_states.entry_id IS 'ledger_entries.entry_id.';
COMMENT ON COLUMN entry_states.run_id IS 'Run that appended it.';
COMMENT ON COLUMN entry_states.year IS 'Settlement year of the key.';
COMMENT ON COLUMN entry_states.clause IS '6 or 7.';
COMMENT ON COLUMN entry_states.beneficiary_id IS 'Beneficiary of the key.';
COMMENT ON COLUMN entry_states.dataset_id IS 'Dataset of the key, '''' for clause 7.';
COMMENT ON COLUMN entry_states.amount IS 'The entry''s delta, CNY.';
COMMENT ON COLUMN entry_states.kind IS 'accrual or adjustment.';
COMMENT ON COLUMN entry_states.created_at IS 'When appended (UTC instant).';
COMMENT ON COLUMN entry_states.state IS 'proposed | approved | rejected: the state of its run.';
COMMENT ON COLUMN entry_states.started_by IS 'Who started its run.';
COMMENT ON COLUMN entry_states.reviewed_by IS 'Who approved or rejected its run.';
COMMENT ON COLUMN entry_states.reviewed_at IS 'When (UTC instant).';

CREATE VIEW objections AS
WITH o AS (
    SELECT event_id AS objection_id, year, beneficiary_id, dataset_id, actor AS raised_by, note AS reason,
           created_at AS raised_at
    FROM lifecycle_events WHERE kind = 'objection'
), r AS (
    SELECT CAST(ref AS BIGINT) AS objection_id, actor AS resolved_by, note AS outcome, created_at AS resolved_at,
           event_id AS resolve_event
    FROM lifecycle_events WHERE kind = 'resolve'
    QUALIFY row_number() OVER (PARTITION BY ref ORDER BY event_id) = 1
)
SELECT o.objection_id, o.year, o.beneficiary_id, o.dataset_id, o.raised_by, o.reason, o.raised_at,
       r.resolved_by, r.outcome, r.resolved_at, coalesce(r.outcome, 'open') AS status,
       (r.outcome IS NULL OR (r.outcome = 'upheld' AND NOT EXISTS (
           SELECT 1 FROM lifecycle_events a WHERE a.kind = 'approve' AND a.year = o.year
           AND a.event_id > r.resolve_event))) AS holding
FROM o LEFT JOIN r USING (objection_id);
COMMENT ON VIEW objections IS 'Objections to notice lines (公示异议): a holding objection keeps its lines out of disbursement.';
COMMENT ON COLUMN objections.objection_id IS 'The objection''s lifecycle_events.event_id (settle resolve-objection ID).';
COMMENT ON COLUMN objections.year IS 'Settlement year.';
COMMENT ON COLUMN objections.beneficiary_id IS 'Beneficiary whose line is objected to.';
COMMENT ON COLUMN objections.dataset_id IS 'Dataset of the line; NULL = every line of the beneficiary in the year.';
COMMENT ON COLUMN objections.raised_by IS 'Who recorded the objection.';
COMMENT ON COLUMN objections.reason IS 'Why.';
COMMENT ON COLUMN objections.raised_at IS 'When (UTC instant).';
COMMENT ON COLUMN objections.resolved_by IS 'Who resolved it; NULL while open.';
COMMENT ON COLUMN objections.outcome IS 'upheld | dismissed; NULL while open.';
COMMENT ON COLUMN objections.resolved_at IS 'When (UTC instant).';
COMMENT ON COLUMN objections.status IS 'open | upheld | dismissed.';
COMMENT ON COLUMN objections.holding IS 'True while open, and after an upheld outcome until a run of the year is approved (the correction).';

CREATE VIEW key_accounts AS
WITH e AS (
    SELECT year, clause, beneficiary_id, dataset_id,
           sum(amount) FILTER (WHERE state <> 'rejected') AS entitled,
           sum(amount) FILTER (WHERE state = 'proposed') AS proposed,
           sum(amount) FILTER (WHERE state = 'approved') AS approved
    FROM entry_states GROUP BY ALL
), n AS (
    SELECT year, clause, beneficiary_id, dataset_id, sum(amount) AS noticed
    FROM lifecycle_events WHERE kind = 'notice' GROUP BY ALL
), d AS (
    SELECT year, clause, beneficiary_id, dataset_id, sum(amount) AS disbursed,
           sum(amount) FILTER (WHERE ref IN (SELECT ref FROM lifecycle_events WHERE kind = 'paid')) AS paid
    FROM lifecycle_events WHERE kind = 'disburse' GROUP BY ALL
), k AS (
    SELECT year, clause, beneficiary_id, dataset_id FROM e
    UNION SELECT year, clause, beneficiary_id, dataset_id FROM n
    UNION SELECT year, clause, beneficiary_id, dataset_id FROM d
)
SELECT k.year, k.clause, k.beneficiary_id, k.dataset_id,
       CAST(coalesce(e.entitled, 0) AS DECIMAL(18,2)) AS entitled,
       CAST(coalesce(e.proposed, 0) AS DECIMAL(18,2)) AS proposed,
       CAST(coalesce(e.approved, 0) AS DECIMAL(18,2)) AS approved,
       CAST(coalesce(n.noticed, 0) AS DECIMAL(18,2)) AS noticed,
       CAST(coalesce(d.disbursed, 0) AS DECIMAL(18,2)) AS disbursed,
       CAST(coalesce(d.paid, 0) AS DECIMAL(18,2)) AS paid,
       CAST(coalesce(e.approved, 0) - coalesce(d.disbursed, 0) AS DECIMAL(18,2)) AS outstanding,
       EXISTS (SELECT 1 FROM objections o WHERE o.holding AND o.year = k.year AND o.beneficiary_id = k.beneficiary_id
               AND (o.dataset_id IS NULL OR o.dataset_id = k.dataset_id)) AS held
FROM k LEFT JOIN e USING (year, clause, beneficiary_id, dataset_id)
LEFT JOIN n USING (year, clause, beneficiary_id, dataset_id)
LEFT JOIN d USING (year, clause, beneficiary_id, dataset_id);
COMMENT ON VIEW key_accounts IS 'Per ledger key: entitled = proposed + approved; approved = disbursed + outstanding; noticed and paid along the way.';
COMMENT ON COLUMN key_accounts.year IS 'Settlement year.';
COMMENT ON COLUMN key_accounts.clause IS '6 or 7.';
COMMENT ON COLUMN key_accounts.beneficiary_id IS 'Beneficiary (owner or platform enterprise).';
COMMENT ON COLUMN key_accounts.dataset_id IS 'Dataset, '''' for clause 7.';
COMMENT ON COLUMN key_accounts.entitled IS 'Σ entries of runs not rejected (settle payouts).';
COMMENT ON COLUMN key_accounts.proposed IS 'Σ entries of runs awaiting review.';
COMMENT ON COLUMN key_accounts.approved IS 'Σ entries of approved runs.';
COMMENT ON COLUMN key_accounts.noticed IS 'Σ notice lines (approved amounts published for objections).';
COMMENT ON COLUMN key_accounts.disbursed IS 'Σ payment instructions (recoveries negative).';
COMMENT ON COLUMN key_accounts.paid IS 'Σ instructions of batches the bank confirmed.';
COMMENT ON COLUMN key_accounts.outstanding IS 'approved − disbursed: still to pay (negative: to recover).';
COMMENT ON COLUMN key_accounts.held IS 'True while a holding objection covers the key.';

CREATE VIEW beneficiary_accounts AS
SELECT year, beneficiary_id, count(*) AS lines,
       CAST(sum(entitled) AS DECIMAL(18,2)) AS entitled, CAST(sum(proposed) AS DECIMAL(18,2)) AS proposed,
       CAST(sum(approved) AS DECIMAL(18,2)) AS approved, CAST(sum(noticed) AS DECIMAL(18,2)) AS noticed,
       CAST(sum(disbursed) AS DECIMAL(18,2)) AS disbursed, CAST(sum(paid) AS DECIMAL(18,2)) AS paid,
       CAST(sum(outstanding) AS DECIMAL(18,2)) AS outstanding, bool_or(held) AS held
FROM key_accounts GROUP BY year, beneficiary_id;
COMMENT ON VIEW beneficiary_accounts IS 'A beneficiary''s account per year (sums of key_accounts): entitled = proposed + approved; approved = disbursed + outstanding.';
COMMENT ON COLUMN beneficiary_accounts.year IS 'Settlement year.';
COMMENT ON COLUMN beneficiary_accounts.beneficiary_id IS 'Beneficiary (owner or platform enterprise).';
COMMENT ON COLUMN beneficiary_accounts.lines IS 'Number of its ledger keys (clause, dataset) in the year.';
COMMENT ON COLUMN beneficiary_accounts.entitled IS 'Σ entries of runs not rejected.';
COMMENT ON COLUMN beneficiary_accounts.proposed IS 'Σ entries awaiting review.';
COMMENT ON COLUMN beneficiary_accounts.approved IS 'Σ approved entries.';
COMMENT ON COLUMN beneficiary_accounts.noticed IS 'Σ noticed lines.';
COMMENT ON COLUMN beneficiary_accounts.disbursed IS 'Σ payment instructions (recoveries negative).';
COMMENT ON COLUMN beneficiary_accounts.paid IS 'Σ instructions of confirmed batches.';
COMMENT ON COLUMN beneficiary_accounts.outstanding IS 'approved − disbursed.';
COMMENT ON COLUMN beneficiary_accounts.held IS 'True when a holding objection covers one of its lines.';

CREATE VIEW current_runs AS
SELECT r.year, r.run_id, x.source_run_id, r.state
FROM run_states r JOIN run_explanation_source x USING (run_id)
WHERE r.state <> 'rejected'
QUALIFY row_number() OVER (PARTITION BY r.year ORDER BY r.run_id DESC) = 1;
COMMENT ON VIEW current_runs IS 'The run in force per year: its latest run not rejected (the one settle payouts reflects), and the run that computed its results.';
COMMENT ON COLUMN current_runs.year IS 'Settlement year.';
COMMENT ON COLUMN current_runs.run_id IS 'The run in force.';
COMMENT ON COLUMN current_runs.source_run_id IS 'The run whose stored results describe it (run_explanation_source: itself, or the run it reused).';
COMMENT ON COLUMN current_runs.state IS 'proposed | approved | unchanged.';

CREATE VIEW current_dataset_results AS
SELECT c.run_id, c.source_run_id, d.year, d.dataset_id, d.owner_id, d.eligible_sales, d.caller_groups,
       d.caller_threshold, d.qualifies, d.base, d.rate, d.gross, d.prior_awards, d.dataset_payable, d.payable,
       d.owner_payable_total, d.owner_cap, d.capped, d.target
FROM current_runs c JOIN run_dataset_results d ON d.run_id = c.source_run_id AND d.year = c.year;
COMMENT ON VIEW current_dataset_results IS 'Clause 6 results in force per year: one row per dataset and owner (P10), whatever run computed them.';
COMMENT ON COLUMN current_dataset_results.run_id IS 'The run in force (current_runs.run_id).';
COMMENT ON COLUMN current_dataset_results.source_run_id IS 'The run that computed these figures.';
COMMENT ON COLUMN current_dataset_results.year IS 'Settlement year.';
COMMENT ON COLUMN current_dataset_results.dataset_id IS 'Dataset.';
COMMENT ON COLUMN current_dataset_results.owner_id IS 'Owner on the dates of the sales (P10.1); the beneficiary.';
COMMENT ON COLUMN current_dataset_results.eligible_sales IS 'Eligible sales (P10.2).';
COMMENT ON COLUMN current_dataset_results.caller_groups IS 'Unrelated caller groups (P10.3).';
COMMENT ON COLUMN current_dataset_results.caller_threshold IS 'Qualifies when caller_groups is greater than this (P10.4).';
COMMENT ON COLUMN current_dataset_results.qualifies IS 'caller_groups > caller_threshold.';
COMMENT ON COLUMN current_dataset_results.base IS 'Σ net of eligible sales (P10.5).';
COMMENT ON COLUMN current_dataset_results.rate IS 'Reward rate (P10.5).';
COMMENT ON COLUMN current_dataset_results.gross IS 'round(rate × base) when qualifying, else 0.';
COMMENT ON COLUMN current_dataset_results.prior_awards IS 'Prior awards of the dataset and year (P10.6).';
COMMENT ON COLUMN current_dataset_results.dataset_payable IS 'max(0, Σ gross of qualifying owners − prior awards) (P10.6).';
COMMENT ON COLUMN current_dataset_results.payable IS 'This owner''s share of dataset_payable, before the cap.';
COMMENT ON COLUMN current_dataset_results.owner_payable_total IS 'Σ payable over the owner''s datasets (P10.7).';
COMMENT ON COLUMN current_dataset_results.owner_cap IS 'Cap per owner and year (P10.7).';
COMMENT ON COLUMN current_dataset_results.capped IS 'True when the cap split applied.';
COMMENT ON COLUMN current_dataset_results.target IS 'Target of the ledger key (year, 6, owner, dataset).';

CREATE VIEW current_platform_results AS
SELECT c.run_id, c.source_run_id, p.year, p.platform_id, p.eligible_sales, p.volume, p.rate, p.subsidy_uncapped,
       p.cap, p.target
FROM current_runs c JOIN run_platform_results p ON p.run_id = c.source_run_id AND p.year = c.year;
COMMENT ON VIEW current_platform_results IS 'Clause 7 results in force per year: one row per platform (P11), whatever run computed them.';
COMMENT ON COLUMN current_platform_results.run_id IS 'The run in force.';
COMMENT ON COLUMN current_platform_results.source_run_id IS 'The run that computed these figures.';
COMMENT ON COLUMN current_platform_results.year IS 'Settlement year.';
COMMENT ON COLUMN current_platform_results.platform_id IS 'Platform enterprise; the beneficiary.';
COMMENT ON COLUMN current_platform_results.eligible_sales IS 'Eligible sales (P11.2).';
COMMENT ON COLUMN current_platform_results.volume IS 'Σ net of eligible sales (P11.3).';
COMMENT ON COLUMN current_platform_results.rate IS 'Subsidy rate.';
COMMENT ON COLUMN current_platform_results.subsidy_uncapped IS 'round(rate × volume).';
COMMENT ON COLUMN current_platform_results.cap IS 'Cap per platform and year.';
COMMENT ON COLUMN current_platform_results.target IS 'min(subsidy_uncapped, cap): target of the key (year, 7, platform, '''').';

CREATE VIEW current_exclusions AS
SELECT c.run_id, c.source_run_id, x.year, x.clause, x.platform_id, x.trade_id, x.upload_id, x.kind, x.dataset_id,
       x.reason, x.detail
FROM current_runs c JOIN exclusions x ON x.run_id = c.source_run_id AND x.year = c.year;
COMMENT ON VIEW current_exclusions IS 'Trades that earn nothing in the results in force: one row per trade and clause (P12), whatever run computed them.';
COMMENT ON COLUMN current_exclusions.run_id IS 'The run in force.';
COMMENT ON COLUMN current_exclusions.source_run_id IS 'The run that found the exclusion.';
COMMENT ON COLUMN current_exclusions.year IS 'Settlement year.';
COMMENT ON COLUMN current_exclusions.clause IS '6 or 7.';
COMMENT ON COLUMN current_exclusions.platform_id IS 'Platform of the trade.';
COMMENT ON COLUMN current_exclusions.trade_id IS 'The trade.';
COMMENT ON COLUMN current_exclusions.upload_id IS 'Upload that stored it.';
COMMENT ON COLUMN current_exclusions.kind IS 'sale or refund.';
COMMENT ON COLUMN current_exclusions.dataset_id IS 'Dataset of the trade.';
COMMENT ON COLUMN current_exclusions.reason IS 'P12 code.';
COMMENT ON COLUMN current_exclusions.detail IS 'Why, in words.';

CREATE VIEW current_callers AS
SELECT c.run_id, c.source_run_id, b.year, b.dataset_id, b.owner_id, b.group_id, b.buyer_id, b.eligible_sales,
       b.net_amount, b.group_counted
FROM current_runs c JOIN run_caller_buyers b ON b.run_id = c.source_run_id AND b.year = c.year;
COMMENT ON VIEW current_callers IS 'Clause 6 callers in the results in force: one row per dataset, owner and buyer (P10.3), whatever run computed them.';
COMMENT ON COLUMN current_callers.run_id IS 'The run in force.';
COMMENT ON COLUMN current_callers.source_run_id IS 'The run that computed them.';
COMMENT ON COLUMN current_callers.year IS 'Settlement year.';
COMMENT ON COLUMN current_callers.dataset_id IS 'Dataset bought.';
COMMENT ON COLUMN current_callers.owner_id IS 'Owner on the dates of these sales.';
COMMENT ON COLUMN current_callers.group_id IS 'Year-graph affiliate group of the buyer (P8).';
COMMENT ON COLUMN current_callers.buyer_id IS 'Buyer enterprise.';
COMMENT ON COLUMN current_callers.eligible_sales IS 'Its eligible sales of the dataset.';
COMMENT ON COLUMN current_callers.net_amount IS 'Σ their net amounts.';
COMMENT ON COLUMN current_callers.group_counted IS 'True when the group counts as one caller (P10.3).';
