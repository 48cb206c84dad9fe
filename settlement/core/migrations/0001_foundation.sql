-- Foundation: uploads, trades, rejected rows and the versioned registries (issue 2).
-- Every table and column carries a COMMENT: regulators read this schema directly (CONTRACT).

CREATE SEQUENCE upload_id_seq START 1;
CREATE SEQUENCE registry_load_id_seq START 1;
CREATE SEQUENCE affiliation_record_id_seq START 1;

CREATE TABLE uploads (
    id BIGINT NOT NULL,
    file_name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    bytes BIGINT NOT NULL,
    file_format VARCHAR,
    rows_read BIGINT NOT NULL,
    rows_stored BIGINT NOT NULL,
    rows_duplicate BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    status VARCHAR NOT NULL,
    uploaded_by VARCHAR NOT NULL,
    uploaded_at TIMESTAMPTZ NOT NULL,
    accept_valid BOOLEAN NOT NULL,
    file_error VARCHAR,
    retracted_at TIMESTAMPTZ,
    retracted_by VARCHAR
);
COMMENT ON TABLE uploads IS 'One row per trade-file upload attempt, accepted or rejected (CONTRACT "Trades").';
COMMENT ON COLUMN uploads.id IS 'Upload id, increasing.';
COMMENT ON COLUMN uploads.file_name IS 'File name as given by the uploader (no directory).';
COMMENT ON COLUMN uploads.sha256 IS 'SHA-256 of the file bytes; the same bytes as a live upload store nothing.';
COMMENT ON COLUMN uploads.bytes IS 'File size in bytes.';
COMMENT ON COLUMN uploads.file_format IS 'csv, parquet, jsonl or xlsx.';
COMMENT ON COLUMN uploads.rows_read IS 'Data rows read from the file (header excluded).';
COMMENT ON COLUMN uploads.rows_stored IS 'Rows stored as new trades.';
COMMENT ON COLUMN uploads.rows_duplicate IS 'Rows identical to a stored trade or to an earlier row of the file: skipped, not errors.';
COMMENT ON COLUMN uploads.rows_rejected IS 'Rows with at least one error (listed in rejected_rows).';
COMMENT ON COLUMN uploads.status IS 'stored | partial (accept-valid with rejected rows) | rejected (nothing stored) | retracted.';
COMMENT ON COLUMN uploads.uploaded_by IS 'Who uploaded: the OS user for the CLI, the token for the API.';
COMMENT ON COLUMN uploads.uploaded_at IS 'When the upload was processed (UTC instant).';
COMMENT ON COLUMN uploads.accept_valid IS 'True when the uploader asked to store valid rows and keep bad ones aside.';
COMMENT ON COLUMN uploads.file_error IS 'Why the whole file was rejected (unreadable, missing column ...), else NULL.';
COMMENT ON COLUMN uploads.retracted_at IS 'When the upload was retracted; its trades stay stored for audit and count for nothing (P9).';
COMMENT ON COLUMN uploads.retracted_by IS 'Who retracted the upload.';

CREATE TABLE trade_rows (
    trade_id VARCHAR NOT NULL,
    platform_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    seller_id VARCHAR NOT NULL,
    buyer_id VARCHAR NOT NULL,
    traded_at TIMESTAMPTZ NOT NULL,
    local_date DATE NOT NULL,
    amount DECIMAL(18,2) NOT NULL,
    currency VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    ref_trade_id VARCHAR,
    upload_id BIGINT NOT NULL,
    row_number BIGINT NOT NULL
);
COMMENT ON TABLE trade_rows IS 'Every trade row ever stored, never updated; read it through the trades view, which adds the retracted flag.';
COMMENT ON COLUMN trade_rows.trade_id IS 'Exchange trade id, unique per platform among live trades.';
COMMENT ON COLUMN trade_rows.platform_id IS 'Credit code of the platform enterprise (P4).';
COMMENT ON COLUMN trade_rows.dataset_id IS 'Dataset traded.';
COMMENT ON COLUMN trade_rows.seller_id IS 'Credit code of the seller (P4).';
COMMENT ON COLUMN trade_rows.buyer_id IS 'Credit code of the buyer (P4).';
COMMENT ON COLUMN trade_rows.traded_at IS 'Trade instant; a file timestamp without offset is Asia/Shanghai local time (P3).';
COMMENT ON COLUMN trade_rows.local_date IS 'Local (Asia/Shanghai) date of traded_at (P3).';
COMMENT ON COLUMN trade_rows.amount IS 'CNY, exact, 2 decimals (P1); positive for sales and refunds alike.';
COMMENT ON COLUMN trade_rows.currency IS 'Always CNY.';
COMMENT ON COLUMN trade_rows.kind IS 'sale or refund (P9).';
COMMENT ON COLUMN trade_rows.ref_trade_id IS 'For a refund: trade_id of the refunded sale on the same platform (P9).';
COMMENT ON COLUMN trade_rows.upload_id IS 'Upload that stored the row (uploads.id).';
COMMENT ON COLUMN trade_rows.row_number IS 'Row number in the uploaded file, header = row 1.';

CREATE VIEW trades AS
SELECT t.trade_id, t.platform_id, t.dataset_id, t.seller_id, t.buyer_id, t.traded_at, t.local_date,
       t.amount, t.kind, t.ref_trade_id, t.upload_id, (u.retracted_at IS NOT NULL) AS retracted,
       t.currency, t.row_number
FROM trade_rows t JOIN uploads u ON u.id = t.upload_id;
COMMENT ON VIEW trades IS 'All stored trades with their retracted flag (CONTRACT regulator schema).';
COMMENT ON COLUMN trades.trade_id IS 'Exchange trade id, unique per platform among live trades.';
COMMENT ON COLUMN trades.platform_id IS 'Credit code of the platform enterprise (P4).';
COMMENT ON COLUMN trades.dataset_id IS 'Dataset traded.';
COMMENT ON COLUMN trades.seller_id IS 'Credit code of the seller (P4).';
COMMENT ON COLUMN trades.buyer_id IS 'Credit code of the buyer (P4).';
COMMENT ON COLUMN trades.traded_at IS 'Trade instant (TIMESTAMPTZ); file timestamps without offset are Asia/Shanghai (P3).';
COMMENT ON COLUMN trades.local_date IS 'Local (Asia/Shanghai) date of traded_at (P3).';
COMMENT ON COLUMN trades.amount IS 'CNY, exact, 2 decimals (P1).';
COMMENT ON COLUMN trades.kind IS 'sale or refund (P9).';
COMMENT ON COLUMN trades.ref_trade_id IS 'For a refund: the refunded sale on the same platform (P9).';
COMMENT ON COLUMN trades.upload_id IS 'Upload that stored the trade.';
COMMENT ON COLUMN trades.retracted IS 'True when its upload was retracted: the trade counts for nothing (P9).';
COMMENT ON COLUMN trades.currency IS 'Always CNY.';
COMMENT ON COLUMN trades.row_number IS 'Row number in the uploaded file, header = row 1.';

CREATE TABLE rejected_rows (
    upload_id BIGINT NOT NULL,
    row_number BIGINT,
    column_name VARCHAR,
    value VARCHAR,
    reason VARCHAR NOT NULL
);
COMMENT ON TABLE rejected_rows IS 'Every error of every rejected row or file, one row per (row, column, reason).';
COMMENT ON COLUMN rejected_rows.upload_id IS 'Upload the error belongs to.';
COMMENT ON COLUMN rejected_rows.row_number IS 'File row number, header = row 1; NULL for an error about the whole file.';
COMMENT ON COLUMN rejected_rows.column_name IS 'Column at fault (lower-case contract name), NULL if none.';
COMMENT ON COLUMN rejected_rows.value IS 'The offending value as read from the file.';
COMMENT ON COLUMN rejected_rows.reason IS 'Why the row was rejected, in words.';

CREATE TABLE registry_loads (
    load_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    rows_loaded BIGINT NOT NULL,
    loaded_by VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE registry_loads IS 'One row per accepted registry file load; earlier versions stay for audit.';
COMMENT ON COLUMN registry_loads.load_id IS 'Load id, increasing; the latest load of an entry wins.';
COMMENT ON COLUMN registry_loads.kind IS 'datasets | platforms | affiliations | prior_awards.';
COMMENT ON COLUMN registry_loads.file_name IS 'File name as given.';
COMMENT ON COLUMN registry_loads.sha256 IS 'SHA-256 of the file bytes.';
COMMENT ON COLUMN registry_loads.rows_loaded IS 'Data rows loaded.';
COMMENT ON COLUMN registry_loads.loaded_by IS 'Who loaded the file.';
COMMENT ON COLUMN registry_loads.loaded_at IS 'When (UTC instant).';

CREATE TABLE dataset_versions (
    load_id BIGINT NOT NULL,
    row_number BIGINT NOT NULL,
    dataset_id VARCHAR NOT NULL,
    owner_id VARCHAR NOT NULL,
    name VARCHAR,
    certified_on DATE,
    certified_until DATE
);
COMMENT ON TABLE dataset_versions IS 'Every version of every dataset registry entry; the datasets view shows the current one.';
COMMENT ON COLUMN dataset_versions.load_id IS 'registry_loads.load_id that brought this version.';
COMMENT ON COLUMN dataset_versions.row_number IS 'Row number in the loaded file, header = row 1.';
COMMENT ON COLUMN dataset_versions.dataset_id IS 'Dataset id as used in trades.';
COMMENT ON COLUMN dataset_versions.owner_id IS 'Credit code of the owner enterprise (P10.1).';
COMMENT ON COLUMN dataset_versions.name IS 'Dataset name.';
COMMENT ON COLUMN dataset_versions.certified_on IS 'First certified day, NULL = open (P10.1).';
COMMENT ON COLUMN dataset_versions.certified_until IS 'Last certified day, NULL = open (P10.1).';

CREATE VIEW datasets AS
SELECT dataset_id, owner_id, name, certified_on, certified_until, load_id
FROM dataset_versions
QUALIFY row_number() OVER (PARTITION BY dataset_id ORDER BY load_id DESC) = 1;
COMMENT ON VIEW datasets IS 'Current dataset registry: the latest loaded version of each dataset.';
COMMENT ON COLUMN datasets.dataset_id IS 'Dataset id.';
COMMENT ON COLUMN datasets.owner_id IS 'Credit code of the owner enterprise (P10.1).';
COMMENT ON COLUMN datasets.name IS 'Dataset name.';
COMMENT ON COLUMN datasets.certified_on IS 'First certified day, NULL = open.';
COMMENT ON COLUMN datasets.certified_until IS 'Last certified day, NULL = open.';
COMMENT ON COLUMN datasets.load_id IS 'Load that brought this version.';

CREATE TABLE platform_versions (
    load_id BIGINT NOT NULL,
    row_number BIGINT NOT NULL,
    platform_id VARCHAR NOT NULL,
    name VARCHAR,
    certified_on DATE,
    certified_until DATE
);
COMMENT ON TABLE platform_versions IS 'Every version of every platform registry entry; the platforms view shows the current one.';
COMMENT ON COLUMN platform_versions.load_id IS 'registry_loads.load_id that brought this version.';
COMMENT ON COLUMN platform_versions.row_number IS 'Row number in the loaded file, header = row 1.';
COMMENT ON COLUMN platform_versions.platform_id IS 'Credit code of the platform enterprise (P4).';
COMMENT ON COLUMN platform_versions.name IS 'Platform name.';
COMMENT ON COLUMN platform_versions.certified_on IS 'First certified day, NULL = open (P11.1).';
COMMENT ON COLUMN platform_versions.certified_until IS 'Last certified day, NULL = open (P11.1).';

CREATE VIEW platforms AS
SELECT platform_id, name, certified_on, certified_until, load_id
FROM platform_versions
QUALIFY row_number() OVER (PARTITION BY platform_id ORDER BY load_id DESC) = 1;
COMMENT ON VIEW platforms IS 'Current platform registry: the latest loaded version of each platform.';
COMMENT ON COLUMN platforms.platform_id IS 'Credit code of the platform enterprise.';
COMMENT ON COLUMN platforms.name IS 'Platform name.';
COMMENT ON COLUMN platforms.certified_on IS 'First certified day, NULL = open.';
COMMENT ON COLUMN platforms.certified_until IS 'Last certified day, NULL = open.';
COMMENT ON COLUMN platforms.load_id IS 'Load that brought this version.';

CREATE TABLE affiliation_versions (
    load_id BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    row_number BIGINT NOT NULL,
    a_id VARCHAR NOT NULL,
    b_id VARCHAR NOT NULL,
    relation VARCHAR NOT NULL,
    share DECIMAL(12,10),
    valid_from DATE,
    valid_to DATE,
    exempt BOOLEAN NOT NULL
);
COMMENT ON TABLE affiliation_versions IS 'Every affiliation record of every loaded set; a load replaces the whole set (CONTRACT).';
COMMENT ON COLUMN affiliation_versions.load_id IS 'registry_loads.load_id of the set.';
COMMENT ON COLUMN affiliation_versions.record_id IS 'Record id, unique across all sets; explanations cite it.';
COMMENT ON COLUMN affiliation_versions.row_number IS 'Row number in the loaded file, header = row 1.';
COMMENT ON COLUMN affiliation_versions.a_id IS 'Credit code or P: person id (P4).';
COMMENT ON COLUMN affiliation_versions.b_id IS 'Credit code or P: person id (P4).';
COMMENT ON COLUMN affiliation_versions.relation IS 'equity | control | management | family | declared (P5).';
COMMENT ON COLUMN affiliation_versions.share IS 'Equity only: the fraction of b held by a, 0 < share <= 1 (P5).';
COMMENT ON COLUMN affiliation_versions.valid_from IS 'First day active, NULL = open (P5).';
COMMENT ON COLUMN affiliation_versions.valid_to IS 'Last day active, NULL = open (P5).';
COMMENT ON COLUMN affiliation_versions.exempt IS 'True: the record never counts (P5).';

CREATE VIEW affiliations AS
SELECT record_id, a_id, b_id, relation, share, valid_from, valid_to, exempt, load_id, row_number
FROM affiliation_versions
WHERE load_id = (SELECT max(load_id) FROM registry_loads WHERE kind = 'affiliations');
COMMENT ON VIEW affiliations IS 'The current affiliation set: the records of the latest affiliations load.';
COMMENT ON COLUMN affiliations.record_id IS 'Record id; explanations cite it.';
COMMENT ON COLUMN affiliations.a_id IS 'Credit code or P: person id.';
COMMENT ON COLUMN affiliations.b_id IS 'Credit code or P: person id.';
COMMENT ON COLUMN affiliations.relation IS 'equity | control | management | family | declared (P5).';
COMMENT ON COLUMN affiliations.share IS 'Equity share of b held by a (P5).';
COMMENT ON COLUMN affiliations.valid_from IS 'First day active, NULL = open.';
COMMENT ON COLUMN affiliations.valid_to IS 'Last day active, NULL = open.';
COMMENT ON COLUMN affiliations.exempt IS 'True: the record never counts (P5).';
COMMENT ON COLUMN affiliations.load_id IS 'Load of the set.';
COMMENT ON COLUMN affiliations.row_number IS 'Row number in the loaded file.';

CREATE TABLE prior_award_versions (
    load_id BIGINT NOT NULL,
    row_number BIGINT NOT NULL,
    dataset_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    amount DECIMAL(18,2) NOT NULL,
    source VARCHAR
);
COMMENT ON TABLE prior_award_versions IS 'Every loaded set of prior awards (supplementary rule 2, P10.6); a load replaces the whole set.';
COMMENT ON COLUMN prior_award_versions.load_id IS 'registry_loads.load_id of the set.';
COMMENT ON COLUMN prior_award_versions.row_number IS 'Row number in the loaded file, header = row 1.';
COMMENT ON COLUMN prior_award_versions.dataset_id IS 'Dataset that already received an award.';
COMMENT ON COLUMN prior_award_versions.year IS 'Year of the award.';
COMMENT ON COLUMN prior_award_versions.amount IS 'Amount already awarded, CNY (P1).';
COMMENT ON COLUMN prior_award_versions.source IS 'Which programme paid it.';

CREATE VIEW prior_awards AS
SELECT dataset_id, year, amount, source, load_id, row_number
FROM prior_award_versions
WHERE load_id = (SELECT max(load_id) FROM registry_loads WHERE kind = 'prior_awards');
COMMENT ON VIEW prior_awards IS 'The current prior-award set (P10.6).';
COMMENT ON COLUMN prior_awards.dataset_id IS 'Dataset.';
COMMENT ON COLUMN prior_awards.year IS 'Year.';
COMMENT ON COLUMN prior_awards.amount IS 'Amount already awarded.';
COMMENT ON COLUMN prior_awards.source IS 'Which programme paid it.';
COMMENT ON COLUMN prior_awards.load_id IS 'Load of the set.';
COMMENT ON COLUMN prior_awards.row_number IS 'Row number in the loaded file.';
