package subscribers

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tayori-news/tayori/audience"
)

// ImportOptions configure Store.Import.
type ImportOptions struct {
	// List is the key of the list imported rows join. Default DefaultList.
	List string
	// DryRun validates and counts everything, then rolls back.
	DryRun bool
	// BatchSize is the number of rows per transaction. Default 20,000.
	// When addresses come in no particular order, each batch touches pages
	// all over the address index and writes each one it touched: at
	// 1,000,000 shuffled rows on the pure-Go engine, batches of 5000
	// imported 21,000 rows/s, of 20,000 about 30,000. In file order 5000
	// and 20,000 are alike (57,000–60,000), and 50,000 or more only cost
	// memory (BenchmarkImport with TAYORI_BENCH_IMPORT_BATCH).
	BatchSize int
	// Cause goes into each imported subscriber's status history
	// ("import subscribers-2026-01.csv"). Default "import".
	Cause string
	// CacheMiB is the SQLite page cache of the import's connection while it
	// runs, in MiB. Default 64; negative keeps the connection's setting.
	// PostgreSQL ignores it.
	CacheMiB int
	// OnBatch, if set, is called after each batch with the number of rows
	// read so far.
	OnBatch func(rows int)
}

// ImportResult summarises an import. Rows counts data rows (not the
// header); every row is counted in exactly one of Added, Updated,
// Unchanged, Skipped or Errors.
type ImportResult struct {
	Rows      int `json:"rows"`
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// Skipped rows were valid but deliberately not applied (a suppressed
	// address, an unsubscribed subscriber); Skips says why, row by row.
	Skipped int           `json:"skipped"`
	Skips   []*FieldError `json:"skips,omitempty"`
	// Errors lists every problem of every bad row; a row with several
	// problems appears several times. ErrorRows counts the rows.
	Errors    []*FieldError `json:"errors,omitempty"`
	ErrorRows int           `json:"error_rows"`
	// Warnings are about the file as a whole (unknown columns).
	Warnings []string `json:"warnings,omitempty"`
}

// MaxImportField bounds any one CSV field; longer fields are a row error.
const MaxImportField = 4096

// MaxImportLine bounds a physical line of an import file, so a file
// without line breaks cannot make the reader buffer it whole; a longer
// line stops the import with an error naming the line.
const MaxImportLine = 1 << 20

// lineLimiter fails a read once a line exceeds max bytes.
type lineLimiter struct {
	r    io.Reader
	max  int
	cur  int // bytes since the last '\n'
	line int // completed lines
	err  error
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.cur = 0
			l.line++
			continue
		}
		l.cur++
		if l.cur > l.max {
			l.err = fmt.Errorf("line %d is longer than %d bytes (is this a CSV file?)", l.line+1, l.max)
			return i, l.err
		}
	}
	return n, err
}

// Column names an import understands (case-insensitive; '-' and ' ' read
// as '_').
var importColumns = map[string]string{
	"email": "email", "e_mail": "email", "mail": "email", "email_address": "email",
	"name": "name", "display_name": "name",
	"regions": "regions", "region": "regions",
	"topics": "topics", "topic": "topics",
	"status":              "status",
	"consent_at":          "consent_at",
	"consent_method":      "consent_method",
	"consent_text":        "consent_text",
	"consent_text_sha256": "consent_text_sha256", "consent_sha256": "consent_text_sha256",
	"consent_version": "consent_version", "consent_form_version": "consent_version", "form_version": "consent_version",
	"consent_ip":         "consent_ip",
	"consent_user_agent": "consent_user_agent",
	// Written by ExportCSV; read and ignored, so that an export imports
	// without warnings.
	"lists": "-", "created_at": "-", "updated_at": "-",
}

type importRow struct {
	row      int
	email    string
	key      string // emailKey(email)
	name     string
	hasName  bool
	regions  []audience.Region // nil: not given
	topics   []audience.Topic  // nil: not given
	status   Status            // "": not given
	consent  *Consent
	problems []*FieldError
	// suppHashes are the address's suppression hashes under every key.
	suppHashes [][]byte

	// nr is what a new subscriber from this row would be, set by
	// prepare in the reading goroutine (with the engine's encoding of it).
	nr NewRow
}

// prepare computes what InsertNew needs of a good row.
func (r *importRow) prepare(st Storage) {
	p := r.prefs()
	regions, topics, custom := maskOf(p)
	r.nr = NewRow{Line: r.row, Email: r.email, Key: r.key, Name: r.name, Status: r.initialStatus(),
		Regions: regions, Topics: topics, Custom: custom, Consent: r.consent, PrefsKey: p.Key()}
	st.PrepareImportRow(&r.nr)
}

// Import reads subscribers from CSV (UTF-8, with or without a BOM; the
// first row is a header naming the columns, see below) into list
// opts.List, in transactions of opts.BatchSize rows.
//
// Columns: email (required), name, regions and topics (comma-separated
// inside the field), status, consent_at (RFC 3339 or YYYY-MM-DD),
// consent_method (import, api, double_opt_in), consent_text (hashed, not
// stored) or consent_text_sha256, consent_version, consent_ip,
// consent_user_agent. Unknown columns are reported once in Warnings.
//
// Rules: a row without a status is active if it carries consent_at and
// pending otherwise; status active requires consent_at. An address that is
// suppressed, or whose subscriber is unsubscribed, bounced or complained or
// left this list, is never re-activated: such rows are skipped (see Skips).
// A known address is updated (name, preferences, a new consent record, a
// downgrade to unsubscribed, bounced or complained) or left unchanged, so
// importing the same file twice changes nothing. Every bad row is
// reported with its line number, field and reason, and good rows are
// imported regardless.
//
// The error is for the file as a whole: an unreadable header, no email
// column, a repeated column, a database failure or ctx's cancellation.
// Batches committed before such an error stay, and the result counts only
// what they applied; since an import is idempotent, running it again
// completes it.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	opts = opts.withDefaults()
	listID, err := s.listID(ctx, s.st, opts.List)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	// The engine's hold on the database for the whole import: on SQLite
	// one connection with a larger page cache and the WAL checkpointed
	// beside it.
	sess, err := s.st.BeginImport(ctx, ImportConfig{DryRun: opts.DryRun, CacheMiB: opts.CacheMiB, Logger: s.log})
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			sess.Close(context.WithoutCancel(ctx), false)
		}
	}()
	cr, cols, nHeader, warnings, err := openImportCSV(r)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	res.Warnings = warnings

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	rd := s.readAhead(rctx, cr, cols, nHeader, opts.BatchSize)
	werr := s.writeBatches(ctx, sess, listID, opts, rd.batches, stop, &res)
	// On SQLite the last batches' WAL goes into the database file before
	// the import returns, so that the next writer starts the WAL afresh.
	closed = true
	if err := sess.Close(ctx, werr == nil && !opts.DryRun); err != nil {
		s.log.WarnContext(ctx, "import: closing", "err", err)
	}
	// writeBatches drained rd.batches: the reader has finished, and its
	// counts are ours now.
	res.Rows, res.ErrorRows, res.Errors = rd.res.Rows, rd.res.ErrorRows, rd.res.Errors
	switch {
	case werr != nil:
		return res, fmt.Errorf("import: %w", werr)
	case rd.err != nil:
		return res, fmt.Errorf("import: %w", rd.err)
	}
	s.log.InfoContext(ctx, "import finished", "list", opts.List, "dry_run", opts.DryRun, "rows", res.Rows,
		"added", res.Added, "updated", res.Updated, "unchanged", res.Unchanged, "skipped", res.Skipped, "errors", res.ErrorRows)
	return res, nil
}

// withDefaults returns o with its zero fields set to their documented
// defaults.
func (o ImportOptions) withDefaults() ImportOptions {
	if o.List == "" {
		o.List = DefaultList
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 20000
	}
	if o.CacheMiB == 0 {
		o.CacheMiB = 64
	}
	if o.Cause == "" {
		o.Cause = "import"
	}
	return o
}

// openImportCSV reads the header of an import file and returns the CSV
// reader positioned at the first data row (lines bounded by
// MaxImportLine, records reused), the canonical name of each column ("" to
// ignore), the header's width and warnings about the header. An empty
// file, an unreadable header or one without a usable email column is an
// error.
func openImportCSV(r io.Reader) (cr *csv.Reader, cols []string, nHeader int, warnings []string, err error) {
	cr = csv.NewReader(&lineLimiter{r: r, max: MaxImportLine})
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, 0, nil, errors.New("empty file (want a header row naming the columns, with at least email)")
		}
		return nil, nil, 0, nil, fmt.Errorf("header: %w", err)
	}
	header = slices.Clone(header) // ReuseRecord: the next Read overwrites it
	cols, warnings, err = parseHeader(header)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	return cr, cols, len(header), warnings, nil
}

// readBatch is one batch of good rows from the reading goroutine.
type readBatch struct {
	rows []*importRow
	read int // rows read so far, for OnBatch
}

// importReading is the reading side of an import, run by readAhead.
type importReading struct {
	batches chan readBatch
	// res (Rows, ErrorRows, Errors) and err belong to the reader until
	// batches is closed, and to the caller after.
	res ImportResult
	err error
}

// readAhead reads, checks and prepares rows (CSV, normalisation, keyed
// hashes, the engine's encoding) in a goroutine of its own, one batch
// ahead of the database, so that the two use both cores; the database
// work itself is serial in SQLite. The reader stops when ctx is done; it
// closes batches when it has finished, and only then are the result's
// res and err set. The caller must drain batches.
func (s *Store) readAhead(ctx context.Context, cr *csv.Reader, cols []string, nHeader, size int) *importReading {
	rd := &importReading{batches: make(chan readBatch, 1)}
	go func() {
		defer close(rd.batches)
		rd.err = s.readImportRows(ctx, cr, cols, nHeader, size, &rd.res, func(rows []*importRow) bool {
			select {
			case rd.batches <- readBatch{rows: rows, read: rd.res.Rows}:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return rd
}

// writeBatches applies each batch from batches in a transaction of its
// own and adds what it did to res once it has committed (in a dry run,
// all batches share one transaction, rolled back at the end), so res
// counts only what is in the database. At the first failure it calls
// stop, so the reader ends, and drains batches; it returns only once
// batches is closed, with no transaction left open.
func (s *Store) writeBatches(ctx context.Context, sess ImportSession, listID int64, opts ImportOptions, batches <-chan readBatch, stop func(), res *ImportResult) error {
	var tx ImportTx
	defer func() {
		if tx != nil {
			tx.Rollback() // dry run: discard everything
		}
	}()
	var werr error
	for b := range batches {
		if werr != nil {
			continue // drain, so the reader finishes
		}
		if tx == nil {
			if tx, werr = sess.Begin(ctx); werr != nil {
				stop()
				continue
			}
		}
		var batch ImportResult
		if werr = s.commitBatch(ctx, tx, listID, opts, b.rows, &batch); werr != nil {
			tx = nil // commitBatch rolled it back, or its commit failed
			stop()
			continue
		}
		if !opts.DryRun {
			tx = nil
		}
		res.merge(&batch)
		if opts.OnBatch != nil {
			opts.OnBatch(b.read)
		}
	}
	return werr
}

// commitBatch applies one batch of rows in tx (importBatch), counting
// what it did in res, and commits tx, except in a dry run. On failure tx
// is rolled back.
func (s *Store) commitBatch(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, rows []*importRow, res *ImportResult) error {
	if err := s.importBatch(ctx, tx, listID, opts, rows, res); err != nil {
		tx.Rollback()
		return err
	}
	if opts.DryRun {
		return nil
	}
	return tx.Commit()
}

// readImportRows reads the data rows of cr, records bad rows in res
// (Rows, ErrorRows, Errors) and hands good rows to emit in batches of
// size; it stops early when emit returns false.
func (s *Store) readImportRows(ctx context.Context, cr *csv.Reader, cols []string, nHeader, size int, res *ImportResult, emit func([]*importRow) bool) error {
	seen := newFirstRows()
	batch := make([]*importRow, 0, size)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			res.Rows++
			res.ErrorRows++
			res.Errors = append(res.Errors, &FieldError{Row: perr.StartLine, Field: "csv", Reason: perr.Err.Error()})
			continue
		} else if err != nil {
			return fmt.Errorf("after row %d: %w", res.Rows+1, err)
		}
		line, _ := cr.FieldPos(0) // a successful Read returns at least one field
		if len(rec) == 1 && rec[0] == "" {
			continue // blank line
		}
		res.Rows++
		row := parseImportRow(line, rec, cols, nHeader)
		if row.email != "" {
			row.key = emailKey(row.email)
			seen.check(row)
		}
		if len(row.problems) > 0 {
			res.ErrorRows++
			res.Errors = append(res.Errors, row.problems...)
			continue
		}
		s.prepareRow(row)
		batch = append(batch, row)
		if len(batch) >= size {
			if !emit(batch) {
				return ctx.Err()
			}
			batch = make([]*importRow, 0, size)
		}
	}
	if len(batch) > 0 && !emit(batch) {
		return ctx.Err()
	}
	return nil
}

// firstRows remembers, by a hash of the address key, the line of each
// address's first good row, so that a later row of the same address is
// an error naming it. A hash collision (64 bits, seeded per import) would
// report a false repeat, never miss one.
type firstRows struct {
	seed maphash.Seed
	line map[uint64]int32
}

func newFirstRows() *firstRows {
	return &firstRows{seed: maphash.MakeSeed(), line: make(map[uint64]int32)}
}

// check adds a problem to row if an earlier good row had its address,
// and otherwise, if row is good, remembers it.
func (f *firstRows) check(row *importRow) {
	h := maphash.String(f.seed, row.key)
	if first, dup := f.line[h]; dup {
		row.problems = append(row.problems, &FieldError{Row: row.row, Field: "email", Reason: fmt.Sprintf("same address as row %d", first)})
	} else if len(row.problems) == 0 {
		f.line[h] = int32(row.row)
	}
}

// prepareRow computes, in the reading goroutine, what the database
// goroutine needs of a good row: its suppression hashes and its encoding
// as a new subscriber.
func (s *Store) prepareRow(row *importRow) {
	row.suppHashes = s.suppressionHashes(row.email)
	row.prepare(s.st)
}

// parseHeader maps column index → canonical name ("" for unknown).
func parseHeader(header []string) ([]string, []string, error) {
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\uFEFF")
	}
	cols := make([]string, len(header))
	var warnings []string
	var problems []string
	at := map[string]int{}
	for i, h := range header {
		if !utf8.ValidString(h) {
			problems = append(problems, fmt.Sprintf("column %d: header is not valid UTF-8 (save the file as UTF-8; Shift_JIS and UTF-16 are not read)", i+1))
			continue
		}
		key := strings.ToLower(strings.TrimSpace(h))
		key = strings.NewReplacer("-", "_", " ", "_").Replace(key)
		canon, ok := importColumns[key]
		if !ok {
			if strings.TrimSpace(h) == "" {
				warnings = append(warnings, fmt.Sprintf("column %d has no name and is ignored", i+1))
			} else {
				warnings = append(warnings, fmt.Sprintf("unknown column %q (column %d) is ignored", truncate(h, 64), i+1))
			}
			continue
		}
		if canon == "-" {
			continue
		}
		if prev, dup := at[canon]; dup {
			problems = append(problems, fmt.Sprintf("columns %d and %d both give %s", prev+1, i+1, canon))
			continue
		}
		at[canon] = i
		cols[i] = canon
	}
	if _, ok := at["email"]; !ok && len(problems) == 0 {
		problems = append(problems, "no email column in the header (first row)")
	}
	if len(problems) > 0 {
		return nil, nil, fmt.Errorf("header: %s", strings.Join(problems, "; "))
	}
	return cols, warnings, nil
}

// parseImportRow reads one data row (file line line) whose fields are
// rec, under the header's columns cols, into an importRow. Every problem
// of the row is in its problems, each with its field, rather than only
// the first; a row with problems is not imported.
func parseImportRow(line int, rec []string, cols []string, nHeader int) *importRow {
	row := &importRow{row: line}
	if len(rec) != nHeader {
		row.problem("csv", "has %d fields, the header has %d", len(rec), nHeader)
		return row
	}
	var c importConsent
	for i, v := range rec {
		col := cols[i]
		if col == "" || col == "-" {
			continue
		}
		if !utf8.ValidString(v) {
			row.problem(col, "not valid UTF-8 (save the file as UTF-8)")
			continue
		}
		if len(v) > MaxImportField {
			row.problem(col, "longer than %d bytes", MaxImportField)
			continue
		}
		v = strings.TrimSpace(v)
		row.parseField(col, v, &c)
	}
	row.finish(&c)
	return row
}

// importConsent gathers a row's consent columns.
type importConsent struct {
	Consent
	given   bool // some consent column is not empty
	atGiven bool // consent_at is not empty
}

// problem adds a problem with field to the row.
func (r *importRow) problem(field, format string, args ...any) {
	r.problems = append(r.problems, &FieldError{Row: r.row, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// parseField reads column col of the row, trimmed value v: email, name,
// regions, topics or status here, the consent columns into c
// (parseConsentField). An empty value leaves the field not given.
func (r *importRow) parseField(col, v string, c *importConsent) {
	switch col {
	case "email":
		e, err := NormalizeEmail(v)
		if err != nil {
			r.problem("email", "%s", asFieldError(err, "email").Reason)
			return
		}
		r.email = e
	case "name":
		v = uncsvSafe(v)
		if p := checkName(v); p != nil {
			r.problem("name", "%s", p.Reason)
			return
		}
		r.name, r.hasName = v, true
	case "regions":
		if v == "" {
			return
		}
		rs, err := audience.ParseRegions(strings.ReplaceAll(v, ";", ","))
		if err != nil {
			r.problem("regions", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		}
		r.regions = rs
	case "topics":
		if v == "" {
			return
		}
		ts, err := audience.ParseTopics(strings.ReplaceAll(v, ";", ","))
		if err != nil {
			r.problem("topics", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
			return
		}
		r.topics = ts
	case "status":
		if v == "" {
			return
		}
		st, err := ParseStatus(v)
		if err != nil {
			r.problem("status", "%s", asFieldError(err, "status").Reason)
			return
		}
		r.status = st
	default:
		r.parseConsentField(col, v, c)
	}
}

// parseConsentField reads consent column col of the row, trimmed value
// v, into c.
func (r *importRow) parseConsentField(col, v string, c *importConsent) {
	switch col {
	case "consent_at":
		if v == "" {
			return
		}
		t, err := parseConsentTime(v)
		if err != nil {
			r.problem("consent_at", "%s", err)
			return
		}
		c.At, c.given, c.atGiven = t, true, true
	case "consent_method":
		if v == "" {
			return
		}
		m, err := ParseMethod(v)
		if err != nil {
			r.problem("consent_method", "%s", asFieldError(err, "consent_method").Reason)
			return
		}
		c.Method, c.given = m, true
	case "consent_text":
		if v != "" {
			c.TextSHA256, c.given = HashText(v), true
		}
	case "consent_text_sha256":
		if v != "" {
			if !isHexSHA256(strings.ToLower(v)) {
				r.problem("consent_text_sha256", "not 64 hex digits")
				return
			}
			c.TextSHA256, c.given = strings.ToLower(v), true
		}
	case "consent_version":
		c.FormVersion = v
		c.given = c.given || v != ""
	case "consent_ip":
		c.IP = v
	case "consent_user_agent":
		c.UserAgent = v
	}
}

// finish checks the row as a whole once its fields are read: an address
// is required, consent needs its time, status active needs consent, and
// the consent record must be valid; a consent with a time becomes the
// row's consent (method import unless given).
func (r *importRow) finish(c *importConsent) {
	if r.email == "" && !slices.ContainsFunc(r.problems, func(p *FieldError) bool { return p.Field == "email" }) {
		r.problem("email", "empty")
	}
	if c.given && !c.atGiven {
		r.problem("consent_at", "missing: consent fields are given but not when consent was given")
	}
	if r.status == Active && !c.atGiven {
		r.problem("status", "active needs a recorded consent (consent_at); leave status empty to import as pending")
	}
	if c.atGiven {
		if c.Method == "" {
			c.Method = Imported
		}
		for _, p := range checkConsent(c.Consent) {
			p.Row = r.row
			r.problems = append(r.problems, p)
		}
		consent := c.Consent
		r.consent = &consent
	}
}

func parseConsentTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not a time (want RFC 3339 like 2026-01-31T09:00:00+09:00, or 2026-01-31)")
}

// merge adds what p applied (Added, Updated, Unchanged, Skipped, Skips)
// to r.
func (r *ImportResult) merge(p *ImportResult) {
	r.Added += p.Added
	r.Updated += p.Updated
	r.Unchanged += p.Unchanged
	r.Skipped += p.Skipped
	r.Skips = append(r.Skips, p.Skips...)
}

// importBatch applies one batch of valid rows inside tx and counts what
// it did in res, row by row in file order: a row of a known address
// updates its subscriber (applyKnown), a new suppressed address is
// skipped, and the other new rows are inserted together (insertNew).
func (s *Store) importBatch(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, batch []*importRow, res *ImportResult) error {
	existing, err := existingOf(ctx, tx, listID, batch)
	if err != nil {
		return err
	}
	suppressed, err := s.suppressedAmong(ctx, tx, freshRows(batch, existing))
	if err != nil {
		return err
	}
	var inserts []*importRow
	for _, row := range batch {
		if ex, ok := existing[row.key]; ok {
			if err := s.applyKnown(ctx, tx, listID, opts, row, ex, res); err != nil {
				return err
			}
			continue
		}
		if suppressed[row.email] {
			res.skip(row.row, "address is suppressed (erased, hard-bounced or complained); only a fresh double opt-in can bring it back")
			continue
		}
		inserts = append(inserts, row)
	}
	return s.insertNew(ctx, tx, listID, opts, inserts, res)
}

// existingOf reads the subscribers the batch's addresses already belong
// to, with their membership of listID, keyed by address key.
func existingOf(ctx context.Context, tx ImportTx, listID int64, batch []*importRow) (map[string]ExistingRow, error) {
	keys := make([]string, len(batch))
	for i, r := range batch {
		keys[i] = r.key
	}
	return tx.Existing(ctx, listID, keys)
}

// freshRows returns the rows of batch whose address is not in existing.
func freshRows(batch []*importRow, existing map[string]ExistingRow) []*importRow {
	var fresh []*importRow
	for _, row := range batch {
		if _, ok := existing[row.key]; !ok {
			fresh = append(fresh, row)
		}
	}
	return fresh
}

// applyKnown applies row to ex, the subscriber its address belongs to
// (importExisting), and counts it in res as updated, unchanged or skipped.
func (s *Store) applyKnown(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, row *importRow, ex ExistingRow, res *ImportResult) error {
	outcome, reason, err := s.importExisting(ctx, tx, listID, opts, row, ex)
	if err != nil {
		return fmt.Errorf("row %d: %w", row.row, err)
	}
	switch outcome {
	case outcomeUpdated:
		res.Updated++
	case outcomeUnchanged:
		res.Unchanged++
	case outcomeSkipped:
		res.skip(row.row, reason)
	}
	return nil
}

// insertNew inserts rows, all of new addresses, as new subscribers
// (bulkInsert) and counts them in res: added, or skipped when someone
// else added the address meanwhile. New rows get their ids in address
// order: then both the table and the address index take each batch's
// rows in ascending order, each page's in one visit, however the file was
// sorted.
func (s *Store) insertNew(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, rows []*importRow, res *ImportResult) error {
	slices.SortFunc(rows, func(a, b *importRow) int { return strings.Compare(a.key, b.key) })
	lost, err := s.bulkInsert(ctx, tx, listID, opts, rows)
	if err != nil {
		return err
	}
	res.Added += len(rows) - len(lost)
	for _, r := range lost {
		res.skip(r.Line, "address was added by someone else during the import; import the file again to update it")
	}
	return nil
}

// skip counts a valid row that was deliberately not applied, with why.
func (r *ImportResult) skip(row int, reason string) {
	r.Skipped++
	r.Skips = append(r.Skips, &FieldError{Row: row, Field: "email", Reason: reason})
}

func (s *Store) suppressedAmong(ctx context.Context, tx ImportTx, rows []*importRow) (map[string]bool, error) {
	out := make(map[string]bool)
	if len(rows) == 0 {
		return out, nil
	}
	n, err := tx.SuppressionCount(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return out, nil
	}
	// When the suppression list is no longer than the hashes to look up,
	// reading all of it is cheaper than binding every hash into IN
	// queries (2.4 µs a row at 1,000,000 rows with two keys), and the
	// rows' hashes are looked up in a set of it, which allocates nothing
	// per row.
	if n <= len(rows)*len(s.supp) {
		all, err := tx.AllSuppressions(ctx)
		if err != nil {
			return nil, err
		}
		set := make(map[string]struct{}, len(all))
		for _, h := range all {
			set[string(h)] = struct{}{}
		}
		for _, r := range rows {
			for _, h := range r.suppHashes {
				if _, ok := set[string(h)]; ok {
					out[r.email] = true
				}
			}
		}
		return out, nil
	}
	owner := make(map[string]string, len(rows)*len(s.supp)) // hash → address
	for _, r := range rows {
		for _, h := range r.suppHashes {
			owner[string(h)] = r.email
		}
	}
	for chunk := range slices.Chunk(rows, max(1, maxInArgs/len(s.supp))) {
		var hashes [][]byte
		for _, r := range chunk {
			hashes = append(hashes, r.suppHashes...)
		}
		found, err := tx.SuppressedAmong(ctx, hashes)
		if err != nil {
			return nil, err
		}
		for _, h := range found {
			if email, ok := owner[string(h)]; ok {
				out[email] = true
			}
		}
	}
	return out, nil
}

type outcome int

const (
	outcomeUnchanged outcome = iota
	outcomeUpdated
	outcomeSkipped
)

// importExisting applies a row to a known subscriber: it works out what
// the row would change (compareKnown), leaves the subscriber alone when
// the import rules say so (settled), and otherwise writes the changes
// (writeKnown, changeKnownStatus) and touches the subscriber once if
// anything changed.
func (s *Store) importExisting(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, row *importRow, ex ExistingRow) (outcome, string, error) {
	ch := compareKnown(row, ex)
	if out, reason, ok := ch.settled(ex, opts.List); ok {
		return out, reason, nil
	}
	now := s.nowUTC()
	changed, err := s.writeKnown(ctx, tx, listID, row, ex, ch, now)
	if err != nil {
		return 0, "", err
	}
	if ch.want != "" && ch.want != ex.Status && allowed(ex.Status, ch.want, false) {
		if err := s.changeKnownStatus(ctx, tx, ex, ch.want, opts.Cause, now); err != nil {
			return 0, "", err
		}
		changed = true
	}
	if !changed {
		return outcomeUnchanged, "", nil
	}
	if err := tx.Touch(ctx, ex.ID, now); err != nil {
		return 0, "", err
	}
	return outcomeUpdated, "", nil
}

// knownChange is what an import row asks of a known subscriber.
type knownChange struct {
	want                Status // the status asked for ("": none; consent alone asks for active)
	regions, topics     int64  // the preferences the subscriber would have
	custom              []string
	prefsChange, rename bool // the preferences, the name differ from the subscriber's
	terminal            bool // the subscriber is unsubscribed, bounced or complained
}

// compareKnown works out what row asks of ex, without writing anything.
// Regions and topics the row leaves empty keep the subscriber's.
func compareKnown(row *importRow, ex ExistingRow) knownChange {
	ch := knownChange{want: row.status, regions: ex.Regions, topics: ex.Topics, custom: ex.Tags}
	if ch.want == "" && row.consent != nil {
		ch.want = Active
	}
	if row.regions != nil || row.topics != nil {
		p := prefsOf(ex.Regions, ex.Topics, ch.custom)
		if row.regions != nil {
			p.Regions = row.regions
		}
		if row.topics != nil {
			p.Topics = row.topics
		}
		ch.regions, ch.topics, ch.custom = maskOf(p)
	}
	ch.prefsChange = ch.regions != ex.Regions || ch.topics != ex.Topics || !slices.Equal(ch.custom, ex.Tags)
	ch.rename = row.hasName && row.name != ex.Name
	ch.terminal = ex.Status == Unsubscribed || ex.Status == Bounced || ex.Status == Complained
	return ch
}

// settled reports whether the import rules leave ex as it is, and how
// the row counts: an unsubscribed, bounced or complained subscriber is
// never re-activated or changed (only downgraded further), and one who
// left list is never re-subscribed.
func (ch knownChange) settled(ex ExistingRow, list string) (outcome, string, bool) {
	switch {
	case ch.terminal && (ch.want == "" || ch.want == ex.Status) && !ch.prefsChange && !ch.rename:
		return outcomeUnchanged, "", true
	case ch.terminal && ch.want != Bounced && ch.want != Complained:
		return outcomeSkipped, fmt.Sprintf("subscriber is %s; an import never re-activates or changes them", ex.Status), true
	case ex.Membership == 0 && !ch.leaves():
		return outcomeSkipped, fmt.Sprintf("subscriber left list %q; an import never re-subscribes them", list), true
	}
	return 0, "", false
}

// leaves reports whether the row asks for a status that leaves lists.
func (ch knownChange) leaves() bool {
	return ch.want == Unsubscribed || ch.want == Bounced || ch.want == Complained
}

// writeKnown writes the row's name, preferences, membership of listID
// (for a subscriber not yet on it) and consent record (not for a
// terminal subscriber), and reports whether it wrote anything.
func (s *Store) writeKnown(ctx context.Context, tx ImportTx, listID int64, row *importRow, ex ExistingRow, ch knownChange, now time.Time) (bool, error) {
	changed := false
	if ch.rename {
		if err := tx.SetName(ctx, ex.ID, row.name, now); err != nil {
			return false, err
		}
		changed = true
	}
	if ch.prefsChange {
		p := prefsOf(ch.regions, ch.topics, ch.custom)
		if err := s.setPrefs(ctx, tx, ex.ID, p, now); err != nil {
			return false, err
		}
		changed = true
	}
	if ex.Membership == -1 && !ch.leaves() {
		if err := tx.JoinListIfNew(ctx, listID, ex.ID, now); err != nil {
			return false, err
		}
		changed = true
	}
	if row.consent != nil && !ch.terminal {
		wrote, err := s.recordConsent(ctx, tx, ex.ID, *row.consent, Imported, []int64{listID}, prefsOf(ch.regions, ch.topics, ch.custom))
		if err != nil {
			return false, err
		}
		changed = changed || wrote
	}
	return changed, nil
}

// changeKnownStatus moves ex to status want (an allowed transition) with
// cause in its history, and does what the new status implies: a bounced
// address is suppressed; a complaint leaves every list and is suppressed;
// an unsubscribe leaves every list.
func (s *Store) changeKnownStatus(ctx context.Context, tx ImportTx, ex ExistingRow, want Status, cause string, now time.Time) error {
	if err := s.setStatus(ctx, tx, Subscriber{ID: ex.ID, Status: ex.Status}, want, cause); err != nil {
		return err
	}
	switch want {
	case Bounced:
		return s.suppressByID(ctx, tx, ex.ID, ReasonBounced)
	case Complained:
		if err := tx.LeaveAll(ctx, ex.ID, now); err != nil {
			return err
		}
		return s.suppressByID(ctx, tx, ex.ID, ReasonComplained)
	case Unsubscribed:
		return tx.LeaveAll(ctx, ex.ID, now)
	}
	return nil
}

func (s *Store) suppressByID(ctx context.Context, tx Queries, id int64, reason Reason) error {
	email, err := tx.EmailOf(ctx, id)
	if err != nil {
		return err
	}
	return s.suppress(ctx, tx, email, reason)
}

// bulkInsert writes new subscribers set-based (ImportTx.InsertNew: on
// SQLite one INSERT … SELECT per table over a binary-JSON array, on
// PostgreSQL COPY into a staging table and one merge), then suppresses
// the addresses of rows imported as bounced or complained. It returns
// the rows someone else added meanwhile.
func (s *Store) bulkInsert(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, rows []*importRow) ([]*NewRow, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	listKey, err := tx.ListKey(ctx, listID)
	if err != nil {
		return nil, err
	}
	nrs := make([]*NewRow, len(rows))
	for i, r := range rows {
		nrs[i] = &r.nr
	}
	lost, err := tx.InsertNew(ctx, NewBatch{ListID: listID, ListKey: listKey, Cause: opts.Cause, At: s.nowUTC(), Rows: nrs})
	if err != nil {
		return nil, fmt.Errorf("rows %d–%d: %w", rows[0].row, rows[len(rows)-1].row, err)
	}
	for _, r := range rows {
		if st := r.nr.Status; (st == Bounced || st == Complained) && !slices.Contains(lost, &r.nr) {
			reason := ReasonBounced
			if st == Complained {
				reason = ReasonComplained
			}
			if err := s.suppress(ctx, tx, r.email, reason); err != nil {
				return nil, fmt.Errorf("row %d: %w", r.row, err)
			}
		}
	}
	return lost, nil
}

func (r *importRow) prefs() audience.Prefs {
	p := audience.All()
	if r.regions != nil {
		p.Regions = r.regions
	}
	if r.topics != nil {
		p.Topics = r.topics
	}
	return p
}

func (r *importRow) initialStatus() Status {
	switch {
	case r.status != "":
		return r.status
	case r.consent != nil:
		return Active
	}
	return Pending
}
