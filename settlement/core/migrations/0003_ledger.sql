-- The append-only, hash-chained settlement ledger (issue 4, P13). Owned by ledgers/ledger.py.
-- Code only ever INSERTs into settlement_runs, run_targets and ledger_entries; ledger_head is the one
-- row every append transaction updates, so two concurrent runs conflict instead of both appending.

CREATE TABLE settlement_runs (
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    params_hash VARCHAR NOT NULL,
    inputs_fingerprint VARCHAR NOT NULL,
    engine_version VARCHAR NOT NULL,
    targets_count BIGINT NOT NULL,
    entries_appended BIGINT NOT NULL,
    head_entry_id BIGINT NOT NULL,
    head_hash VARCHAR NOT NULL
);
COMMENT ON TABLE settlement_runs IS 'One row per settlement run of one year (P13), including runs that appended nothing.';
COMMENT ON COLUMN settlement_runs.run_id IS 'Run id, 1, 2, 3 ... in commit order.';
COMMENT ON COLUMN settlement_runs.year IS 'Settlement year (calendar year of the local date, P3).';
COMMENT ON COLUMN settlement_runs.started_at IS 'When the run started computing (UTC instant).';
COMMENT ON COLUMN settlement_runs.finished_at IS 'When the run committed its ledger entries (UTC instant).';
COMMENT ON COLUMN settlement_runs.params_hash IS 'SHA-256 of the policy parameter file used (settlement/policy_params.toml).';
COMMENT ON COLUMN settlement_runs.inputs_fingerprint IS 'Fingerprint of the inputs used: uploads, registry versions, affiliation set.';
COMMENT ON COLUMN settlement_runs.engine_version IS 'Version of the settlement engine that computed the targets.';
COMMENT ON COLUMN settlement_runs.targets_count IS 'Number of target rows the run recorded in run_targets.';
COMMENT ON COLUMN settlement_runs.entries_appended IS 'Number of ledger entries the run appended (0 when nothing changed).';
COMMENT ON COLUMN settlement_runs.head_entry_id IS 'entry_id of the last ledger entry after the run (0 = empty ledger).';
COMMENT ON COLUMN settlement_runs.head_hash IS 'hash of that entry (64 zeros for an empty ledger): the chain head the run committed to.';

CREATE TABLE run_targets (
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    clause INTEGER NOT NULL,
    beneficiary_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    amount DECIMAL(18,2) NOT NULL
);
COMMENT ON TABLE run_targets IS 'The target payable per key that each run computed (P13); ledger verify re-derives every key from these.';
COMMENT ON COLUMN run_targets.run_id IS 'Run that computed the target (settlement_runs.run_id).';
COMMENT ON COLUMN run_targets.year IS 'Settlement year of the key.';
COMMENT ON COLUMN run_targets.clause IS '6 (dataset reward, P10) or 7 (platform subsidy, P11).';
COMMENT ON COLUMN run_targets.beneficiary_id IS 'Credit code of the dataset owner (clause 6) or platform enterprise (clause 7).';
COMMENT ON COLUMN run_targets.dataset_id IS 'Dataset id for clause 6; empty string for clause 7.';
COMMENT ON COLUMN run_targets.amount IS 'Target payable of the key for the year, CNY (P1). A key absent here has target 0.';

CREATE TABLE ledger_entries (
    entry_id BIGINT NOT NULL,
    run_id BIGINT NOT NULL,
    year INTEGER NOT NULL,
    clause INTEGER NOT NULL,
    beneficiary_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    amount DECIMAL(18,2) NOT NULL,
    kind VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    inputs_fingerprint VARCHAR NOT NULL,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);
COMMENT ON TABLE ledger_entries IS 'Append-only payout ledger (P13): one row per non-zero change of a key; never updated or deleted. A key''s amount is the sum of its entries.';
COMMENT ON COLUMN ledger_entries.entry_id IS 'Entry id, 1, 2, 3 ... without gaps, in chain order.';
COMMENT ON COLUMN ledger_entries.run_id IS 'Run that appended the entry (settlement_runs.run_id).';
COMMENT ON COLUMN ledger_entries.year IS 'Settlement year of the key.';
COMMENT ON COLUMN ledger_entries.clause IS '6 (dataset reward, P10) or 7 (platform subsidy, P11).';
COMMENT ON COLUMN ledger_entries.beneficiary_id IS 'Credit code of the dataset owner (clause 6) or platform enterprise (clause 7).';
COMMENT ON COLUMN ledger_entries.dataset_id IS 'Dataset id for clause 6; empty string (never NULL) for clause 7.';
COMMENT ON COLUMN ledger_entries.amount IS 'Delta = target − sum of earlier entries of the key, CNY (P1); negative = claw-back.';
COMMENT ON COLUMN ledger_entries.kind IS 'accrual (first entry of a key) or adjustment (every later one).';
COMMENT ON COLUMN ledger_entries.created_at IS 'When the entry was appended (UTC instant; the run''s commit time).';
COMMENT ON COLUMN ledger_entries.inputs_fingerprint IS 'Fingerprint of the inputs of the run that appended it (as settlement_runs).';
COMMENT ON COLUMN ledger_entries.prev_hash IS 'hash of the entry before (entry_id − 1); 64 zeros for the first entry.';
COMMENT ON COLUMN ledger_entries.hash IS 'SHA-256 hex of the entry''s canonical text and prev_hash (ledgers/ledger.py CANONICAL_SQL); settle ledger verify recomputes it.';

CREATE TABLE ledger_head (
    singleton BOOLEAN NOT NULL,
    last_run_id BIGINT NOT NULL,
    last_entry_id BIGINT NOT NULL,
    last_hash VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ
);
COMMENT ON TABLE ledger_head IS 'One row: the ledger''s chain head. Every run updates it, so concurrent runs conflict and are serialised.';
COMMENT ON COLUMN ledger_head.singleton IS 'Always true: the table has exactly one row.';
COMMENT ON COLUMN ledger_head.last_run_id IS 'run_id of the last committed run (0 = none).';
COMMENT ON COLUMN ledger_head.last_entry_id IS 'entry_id of the last ledger entry (0 = none).';
COMMENT ON COLUMN ledger_head.last_hash IS 'hash of the last ledger entry (64 zeros = none).';
COMMENT ON COLUMN ledger_head.updated_at IS 'When the head last moved (UTC instant).';
INSERT INTO ledger_head VALUES (true, 0, 0, '0000000000000000000000000000000000000000000000000000000000000000', NULL);
