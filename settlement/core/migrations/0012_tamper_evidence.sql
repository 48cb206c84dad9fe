-- Tamper evidence (issue 15 items 1 and 2): digests of the stored input rows, the digests each run read,
-- a hash chain over the runs' rows, signed approvals. Owned by settlement/inputs/digests.py (input_digests,
-- input_digest_chunks) and ledgers/ (run_input_digests, settlement_runs columns, lifecycle_events.signature).
-- docs/threat-model.md says what these stop and what they cannot.

CREATE TABLE input_digests (
    source VARCHAR NOT NULL,
    ref_id BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    digest VARCHAR NOT NULL
);
COMMENT ON TABLE input_digests IS 'Digest of the rows each trade upload or registry load stored, recorded in the same transaction (settlement/inputs/digests.py, rows-v1); settle ledger verify recomputes it.';
COMMENT ON COLUMN input_digests.source IS 'upload (trade_rows) | datasets | platforms | affiliations | prior_awards (the *_versions table of a registry load).';
COMMENT ON COLUMN input_digests.ref_id IS 'uploads.id, or registry_loads.load_id.';
COMMENT ON COLUMN input_digests.rows IS 'Rows stored by it.';
COMMENT ON COLUMN input_digests.digest IS 'sha256 of ''rows-v1|'' and its chunk digests in chunk order, ''|''-separated.';

CREATE TABLE input_digest_chunks (
    source VARCHAR NOT NULL,
    ref_id BIGINT NOT NULL,
    chunk BIGINT NOT NULL,
    first_row BIGINT NOT NULL,
    last_row BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    digest VARCHAR NOT NULL
);
COMMENT ON TABLE input_digest_chunks IS 'Digests of 4096-row chunks (by file row number) of each upload or load: verify names the first chunk whose rows changed.';
COMMENT ON COLUMN input_digest_chunks.source IS 'As input_digests.source.';
COMMENT ON COLUMN input_digest_chunks.ref_id IS 'As input_digests.ref_id.';
COMMENT ON COLUMN input_digest_chunks.chunk IS 'row_number // 4096.';
COMMENT ON COLUMN input_digest_chunks.first_row IS 'Lowest file row number in the chunk.';
COMMENT ON COLUMN input_digest_chunks.last_row IS 'Highest file row number in the chunk.';
COMMENT ON COLUMN input_digest_chunks.rows IS 'Rows in the chunk.';
COMMENT ON COLUMN input_digest_chunks.digest IS 'sha256 of the rows'' canonical texts in row order, one per line (settlement/inputs/digests.py).';

CREATE TABLE run_input_digests (
    run_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    ref_id BIGINT NOT NULL,
    digest VARCHAR NOT NULL
);
COMMENT ON TABLE run_input_digests IS 'The input digests each settlement run read (every recorded upload and registry load at the time); covered by settlement_runs.inputs_digest and the run hash.';
COMMENT ON COLUMN run_input_digests.run_id IS 'settlement_runs.run_id.';
COMMENT ON COLUMN run_input_digests.source IS 'As input_digests.source.';
COMMENT ON COLUMN run_input_digests.ref_id IS 'As input_digests.ref_id.';
COMMENT ON COLUMN run_input_digests.digest IS 'input_digests.digest when the run read it; verify checks it still matches.';

ALTER TABLE settlement_runs ADD COLUMN inputs_digest VARCHAR;
ALTER TABLE settlement_runs ADD COLUMN targets_digest VARCHAR;
ALTER TABLE settlement_runs ADD COLUMN prev_run_hash VARCHAR;
ALTER TABLE settlement_runs ADD COLUMN run_hash VARCHAR;
COMMENT ON COLUMN settlement_runs.inputs_digest IS 'sha256 of the run''s run_input_digests rows (ledgers/runchain.py); NULL for runs before migration 0012.';
COMMENT ON COLUMN settlement_runs.targets_digest IS 'sha256 of the run''s run_targets rows in key order (ledgers/runchain.py).';
COMMENT ON COLUMN settlement_runs.prev_run_hash IS 'run_hash of the run before (run_id − 1); 64 zeros for the first hashed run.';
COMMENT ON COLUMN settlement_runs.run_hash IS 'sha256 of the run''s canonical text (every column above, the ledger head it committed to) and prev_run_hash; settle ledger verify recomputes it.';

ALTER TABLE lifecycle_events ADD COLUMN signature VARCHAR;
COMMENT ON COLUMN lifecycle_events.signature IS 'approve: Ed25519 signature (hex) by the approver''s registered key over ''approve-v1|run_id|head_hash|L:approver'' (the run''s last entry hash); key: NULL. Once a key is registered every later approval must carry a valid one (settle ledger verify).';
COMMENT ON COLUMN lifecycle_events.kind IS 'approve | reject (a run) | notice (a notice line) | objection | resolve (an objection) | disburse (a payment instruction line) | paid (bank confirmation of a batch) | key (an approver''s public key: actor = name, note = raw Ed25519 public key hex, ref = its fingerprint).';

-- A run is approved only by an approval that carries a signature once any key was registered before it
-- (the signature itself is checked in Python: settle ledger verify, settle notice, settle disburse).
CREATE OR REPLACE VIEW run_states AS
WITH review AS (
    SELECT run_id, kind, actor, note, created_at FROM lifecycle_events e
    WHERE kind = 'reject' OR (kind = 'approve' AND (e.signature IS NOT NULL OR NOT EXISTS (
        SELECT 1 FROM lifecycle_events k WHERE k.kind = 'key' AND k.event_id < e.event_id)))
    QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY event_id) = 1
)
SELECT s.run_id, s.year, s.started_by, s.started_at, s.entries_appended AS entries,
       CASE WHEN v.kind = 'approve' THEN 'approved' WHEN v.kind = 'reject' THEN 'rejected'
            WHEN s.entries_appended = 0 THEN 'unchanged' ELSE 'proposed' END AS state,
       v.actor AS reviewed_by, v.created_at AS reviewed_at, v.note AS review_note
FROM settlement_runs s LEFT JOIN review v USING (run_id);
COMMENT ON VIEW run_states IS 'Every settlement run with its lifecycle state (CONTRACT settle runs list); an unsigned approval recorded after a key registration does not approve.';
COMMENT ON COLUMN run_states.run_id IS 'settlement_runs.run_id.';
COMMENT ON COLUMN run_states.year IS 'Settlement year.';
COMMENT ON COLUMN run_states.started_by IS 'Who started the run.';
COMMENT ON COLUMN run_states.started_at IS 'When it started (UTC instant).';
COMMENT ON COLUMN run_states.entries IS 'Ledger entries the run appended.';
COMMENT ON COLUMN run_states.state IS 'proposed (entries awaiting review) | approved | rejected | unchanged (appended nothing, nothing to review).';
COMMENT ON COLUMN run_states.reviewed_by IS 'Who approved or rejected it; NULL while proposed.';
COMMENT ON COLUMN run_states.reviewed_at IS 'When (UTC instant).';
COMMENT ON COLUMN run_states.review_note IS 'Approval comment or rejection reason.';


CREATE VIEW approver_keys AS
SELECT actor AS name, note AS public_key, ref AS fingerprint, event_id, created_at AS registered_at
FROM lifecycle_events WHERE kind = 'key'
QUALIFY row_number() OVER (PARTITION BY actor ORDER BY event_id DESC) = 1;
COMMENT ON VIEW approver_keys IS 'The Ed25519 public key in force per approver name (settle keys register); the private key never enters the store.';
COMMENT ON COLUMN approver_keys.name IS 'Approver name (settle approve --by).';
COMMENT ON COLUMN approver_keys.public_key IS 'Raw Ed25519 public key, hex.';
COMMENT ON COLUMN approver_keys.fingerprint IS 'First 16 hex digits of sha256 of the raw key (printed in notices).';
COMMENT ON COLUMN approver_keys.event_id IS 'The key record (lifecycle_events).';
COMMENT ON COLUMN approver_keys.registered_at IS 'When registered (UTC instant).';
