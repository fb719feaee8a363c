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
	if opts.List == "" {
		opts.List = DefaultList
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 20000
	}
	if opts.CacheMiB == 0 {
		opts.CacheMiB = 64
	}
	if opts.Cause == "" {
		opts.Cause = "import"
	}
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
	flushed := false
	defer func() {
		if !flushed {
			sess.Close(context.WithoutCancel(ctx), false)
		}
	}()
	cr := csv.NewReader(&lineLimiter{r: r, max: MaxImportLine})
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return res, errors.New("import: empty file (want a header row naming the columns, with at least email)")
		}
		return res, fmt.Errorf("import: header: %w", err)
	}
	header = slices.Clone(header) // ReuseRecord: the next Read overwrites it
	cols, warnings, err := parseHeader(header)
	if err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	res.Warnings = warnings

	// Reading and checking rows (CSV, normalisation, keyed hashes, the
	// engine's encoding) runs in its own goroutine, one batch ahead of the
	// database, so the two use both cores; the database work itself is
	// serial in SQLite.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	type readBatch struct {
		rows []*importRow
		read int // rows read so far, for OnBatch
	}
	batches := make(chan readBatch, 1)
	var rres ImportResult // Rows, ErrorRows and Errors, owned by the reader until batches closes
	var rerr error
	go func() {
		defer close(batches)
		rerr = s.readImportRows(rctx, cr, cols, len(header), opts.BatchSize, &rres, func(rows []*importRow) bool {
			select {
			case batches <- readBatch{rows: rows, read: rres.Rows}:
				return true
			case <-rctx.Done():
				return false
			}
		})
	}()

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
		// batch counts what this batch did; it joins res once the batch
		// commits (at once in a dry run), so res counts only what is in
		// the database.
		var batch ImportResult
		if werr = s.importBatch(ctx, tx, listID, opts, b.rows, &batch); werr != nil {
			tx.Rollback()
			tx = nil
			stop()
			continue
		}
		if !opts.DryRun {
			werr = tx.Commit()
			tx = nil
			if werr != nil {
				stop()
				continue
			}
		}
		res.merge(&batch)
		if opts.OnBatch != nil {
			opts.OnBatch(b.read)
		}
	}
	// On SQLite the last batches' WAL goes into the database file before
	// the import returns, so that the next writer starts the WAL afresh.
	if tx != nil {
		tx.Rollback()
		tx = nil
	}
	flushed = true
	if err := sess.Close(ctx, werr == nil && !opts.DryRun); err != nil {
		s.log.WarnContext(ctx, "import: closing", "err", err)
	}
	// The reader has finished: its counts are ours now.
	res.Rows, res.ErrorRows, res.Errors = rres.Rows, rres.ErrorRows, rres.Errors
	switch {
	case werr != nil:
		return res, fmt.Errorf("import: %w", werr)
	case rerr != nil:
		return res, fmt.Errorf("import: %w", rerr)
	}
	s.log.InfoContext(ctx, "import finished", "list", opts.List, "dry_run", opts.DryRun, "rows", res.Rows,
		"added", res.Added, "updated", res.Updated, "unchanged", res.Unchanged, "skipped", res.Skipped, "errors", res.ErrorRows)
	return res, nil
}

// readImportRows reads the data rows of cr, records bad rows in res
// (Rows, ErrorRows, Errors) and hands good rows to emit in batches of
// size; it stops early when emit returns false.
func (s *Store) readImportRows(ctx context.Context, cr *csv.Reader, cols []string, nHeader, size int, res *ImportResult, emit func([]*importRow) bool) error {
	seed := maphash.MakeSeed()
	seen := make(map[uint64]int32)
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
			h := maphash.String(seed, row.key)
			if first, dup := seen[h]; dup {
				row.problems = append(row.problems, &FieldError{Row: line, Field: "email", Reason: fmt.Sprintf("same address as row %d", first)})
			} else if len(row.problems) == 0 {
				seen[h] = int32(line)
			}
		}
		if len(row.problems) > 0 {
			res.ErrorRows++
			res.Errors = append(res.Errors, row.problems...)
			continue
		}
		row.suppHashes = s.suppressionHashes(row.email)
		row.prepare(s.st)
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

func parseImportRow(line int, rec []string, cols []string, nHeader int) *importRow {
	row := &importRow{row: line}
	add := func(field, format string, args ...any) {
		row.problems = append(row.problems, &FieldError{Row: line, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if len(rec) != nHeader {
		add("csv", "has %d fields, the header has %d", len(rec), nHeader)
		return row
	}
	var c Consent
	var consentGiven, consentAtGiven bool
	for i, v := range rec {
		col := cols[i]
		if col == "" || col == "-" {
			continue
		}
		if !utf8.ValidString(v) {
			add(col, "not valid UTF-8 (save the file as UTF-8)")
			continue
		}
		if len(v) > MaxImportField {
			add(col, "longer than %d bytes", MaxImportField)
			continue
		}
		v = strings.TrimSpace(v)
		switch col {
		case "email":
			e, err := NormalizeEmail(v)
			if err != nil {
				fe := asFieldError(err, "email")
				add("email", "%s", fe.Reason)
				continue
			}
			row.email = e
		case "name":
			v = uncsvSafe(v)
			if p := checkName(v); p != nil {
				add("name", "%s", p.Reason)
				continue
			}
			row.name, row.hasName = v, true
		case "regions":
			if v == "" {
				continue
			}
			rs, err := audience.ParseRegions(strings.ReplaceAll(v, ";", ","))
			if err != nil {
				add("regions", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
				continue
			}
			row.regions = rs
		case "topics":
			if v == "" {
				continue
			}
			ts, err := audience.ParseTopics(strings.ReplaceAll(v, ";", ","))
			if err != nil {
				add("topics", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
				continue
			}
			row.topics = ts
		case "status":
			if v == "" {
				continue
			}
			st, err := ParseStatus(v)
			if err != nil {
				add("status", "%s", asFieldError(err, "status").Reason)
				continue
			}
			row.status = st
		case "consent_at":
			if v == "" {
				continue
			}
			t, err := parseConsentTime(v)
			if err != nil {
				add("consent_at", "%s", err)
				continue
			}
			c.At, consentGiven, consentAtGiven = t, true, true
		case "consent_method":
			if v == "" {
				continue
			}
			m, err := ParseMethod(v)
			if err != nil {
				add("consent_method", "%s", asFieldError(err, "consent_method").Reason)
				continue
			}
			c.Method, consentGiven = m, true
		case "consent_text":
			if v != "" {
				c.TextSHA256, consentGiven = HashText(v), true
			}
		case "consent_text_sha256":
			if v != "" {
				if !isHexSHA256(strings.ToLower(v)) {
					add("consent_text_sha256", "not 64 hex digits")
					continue
				}
				c.TextSHA256, consentGiven = strings.ToLower(v), true
			}
		case "consent_version":
			c.FormVersion = v
			consentGiven = consentGiven || v != ""
		case "consent_ip":
			c.IP = v
		case "consent_user_agent":
			c.UserAgent = v
		}
	}
	if row.email == "" && !slices.ContainsFunc(row.problems, func(p *FieldError) bool { return p.Field == "email" }) {
		add("email", "empty")
	}
	if consentGiven && !consentAtGiven {
		add("consent_at", "missing: consent fields are given but not when consent was given")
	}
	if row.status == Active && !consentAtGiven {
		add("status", "active needs a recorded consent (consent_at); leave status empty to import as pending")
	}
	if consentAtGiven {
		if c.Method == "" {
			c.Method = Imported
		}
		for _, p := range checkConsent(c) {
			p.Row = line
			row.problems = append(row.problems, p)
		}
		row.consent = &c
	}
	return row
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

// importBatch applies one batch of valid rows inside tx.
func (s *Store) importBatch(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, batch []*importRow, res *ImportResult) error {
	keys := make([]string, len(batch))
	for i, r := range batch {
		keys[i] = r.key
	}
	existing, err := tx.Existing(ctx, listID, keys)
	if err != nil {
		return err
	}
	var fresh []*importRow
	for _, row := range batch {
		if _, ok := existing[row.key]; !ok {
			fresh = append(fresh, row)
		}
	}
	suppressed, err := s.suppressedAmong(ctx, tx, fresh)
	if err != nil {
		return err
	}
	var inserts []*importRow
	for _, row := range batch {
		if ex, ok := existing[row.key]; ok {
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
				res.Skipped++
				res.Skips = append(res.Skips, &FieldError{Row: row.row, Field: "email", Reason: reason})
			}
			continue
		}
		if suppressed[row.email] {
			res.Skipped++
			res.Skips = append(res.Skips, &FieldError{Row: row.row, Field: "email",
				Reason: "address is suppressed (erased, hard-bounced or complained); only a fresh double opt-in can bring it back"})
			continue
		}
		inserts = append(inserts, row)
	}
	// New rows get their ids in address order: then both the table and
	// the address index take each batch's rows in ascending order, each
	// page's in one visit, however the file was sorted.
	slices.SortFunc(inserts, func(a, b *importRow) int { return strings.Compare(a.key, b.key) })
	lost, err := s.bulkInsert(ctx, tx, listID, opts, inserts)
	if err != nil {
		return err
	}
	res.Added += len(inserts) - len(lost)
	for _, r := range lost {
		res.Skipped++
		res.Skips = append(res.Skips, &FieldError{Row: r.Line, Field: "email",
			Reason: "address was added by someone else during the import; import the file again to update it"})
	}
	return nil
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

// importExisting applies a row to a known subscriber.
func (s *Store) importExisting(ctx context.Context, tx ImportTx, listID int64, opts ImportOptions, row *importRow, ex ExistingRow) (outcome, string, error) {
	want := row.status
	if want == "" && row.consent != nil {
		want = Active
	}
	wantRegions, wantTopics, wantCustom := ex.Regions, ex.Topics, ex.Tags
	if row.regions != nil || row.topics != nil {
		p := prefsOf(ex.Regions, ex.Topics, wantCustom)
		if row.regions != nil {
			p.Regions = row.regions
		}
		if row.topics != nil {
			p.Topics = row.topics
		}
		wantRegions, wantTopics, wantCustom = maskOf(p)
	}
	prefsChange := wantRegions != ex.Regions || wantTopics != ex.Topics || !slices.Equal(wantCustom, ex.Tags)
	nameChange := row.hasName && row.name != ex.Name

	terminal := ex.Status == Unsubscribed || ex.Status == Bounced || ex.Status == Complained
	switch {
	case terminal && (want == "" || want == ex.Status) && !prefsChange && !nameChange:
		return outcomeUnchanged, "", nil
	case terminal && want != Bounced && want != Complained:
		return outcomeSkipped, fmt.Sprintf("subscriber is %s; an import never re-activates or changes them", ex.Status), nil
	case ex.Membership == 0 && want != Unsubscribed && want != Bounced && want != Complained:
		return outcomeSkipped, fmt.Sprintf("subscriber left list %q; an import never re-subscribes them", opts.List), nil
	}

	changed := false
	now := s.nowUTC()
	sub := Subscriber{ID: ex.ID, Status: ex.Status}
	if nameChange {
		if err := tx.SetName(ctx, ex.ID, row.name, now); err != nil {
			return 0, "", err
		}
		changed = true
	}
	if prefsChange {
		p := prefsOf(wantRegions, wantTopics, wantCustom)
		if err := s.setPrefs(ctx, tx, ex.ID, p, now); err != nil {
			return 0, "", err
		}
		changed = true
	}
	if ex.Membership == -1 && want != Unsubscribed && want != Bounced && want != Complained {
		if err := tx.JoinListIfNew(ctx, listID, ex.ID, now); err != nil {
			return 0, "", err
		}
		changed = true
	}
	if row.consent != nil && !terminal {
		wrote, err := s.recordConsent(ctx, tx, ex.ID, *row.consent, Imported, []int64{listID}, prefsOf(wantRegions, wantTopics, wantCustom))
		if err != nil {
			return 0, "", err
		}
		changed = changed || wrote
	}
	if want != "" && want != ex.Status && allowed(ex.Status, want, false) {
		if err := s.setStatus(ctx, tx, sub, want, opts.Cause); err != nil {
			return 0, "", err
		}
		switch want {
		case Bounced:
			err := s.suppressByID(ctx, tx, ex.ID, ReasonBounced)
			if err != nil {
				return 0, "", err
			}
		case Complained:
			if err := tx.LeaveAll(ctx, ex.ID, now); err != nil {
				return 0, "", err
			}
			if err := s.suppressByID(ctx, tx, ex.ID, ReasonComplained); err != nil {
				return 0, "", err
			}
		case Unsubscribed:
			if err := tx.LeaveAll(ctx, ex.ID, now); err != nil {
				return 0, "", err
			}
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
