package subscribers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tayori-news/tayori/audience"
)

// DataExport is everything the store holds about one subscriber, for a
// GDPR access or portability request (Arts. 15, 20). Send history is kept
// by the delivery side and is not part of it.
type DataExport struct {
	// FormatVersion is 1.
	FormatVersion int            `json:"format_version"`
	ExportedAt    time.Time      `json:"exported_at"`
	Subscriber    Subscriber     `json:"subscriber"`
	Consents      []Consent      `json:"consents"`
	StatusHistory []StatusChange `json:"status_history"`
	// Suppressed tells whether the address is on the suppression list.
	Suppressed bool `json:"suppressed"`
}

// Export returns one subscriber's data.
func (s *Store) Export(ctx context.Context, id int64) (DataExport, error) {
	sub, err := s.Get(ctx, id)
	if err != nil {
		return DataExport{}, fmt.Errorf("export: %w", err)
	}
	cons, err := s.Consents(ctx, id)
	if err != nil {
		return DataExport{}, fmt.Errorf("export: %w", err)
	}
	hist, err := s.History(ctx, id)
	if err != nil {
		return DataExport{}, fmt.Errorf("export: %w", err)
	}
	var sup bool
	if sub.Email != "" {
		if sup, err = s.isSuppressed(ctx, s.st, sub.Email); err != nil {
			return DataExport{}, fmt.Errorf("export: %w", err)
		}
	}
	return DataExport{FormatVersion: 1, ExportedAt: s.now().UTC(), Subscriber: sub, Consents: cons, StatusHistory: hist, Suppressed: sup}, nil
}

// ExportQuery selects the subscribers of a bulk export.
type ExportQuery struct {
	// List keeps members of this list key; empty keeps everyone.
	List string
	// Status keeps this status; empty keeps all.
	Status Status
}

// ExportColumns are the columns of ExportCSV, in order. They are the
// import's column names, so a file exported and imported again changes
// nothing.
var ExportColumns = []string{"email", "name", "status", "regions", "topics", "lists", "created_at", "updated_at",
	"consent_at", "consent_method", "consent_version", "consent_text_sha256", "consent_ip", "consent_user_agent"}

// ExportCSV writes the subscribers selected by q (not erased ones) as CSV
// with a header row, streaming page by page, and returns how many it wrote.
// The latest consent record of each subscriber fills the consent columns.
// A name that a spreadsheet would take for a formula (starting with =, +,
// -, @) is written with a leading apostrophe, which Import removes.
func (s *Store) ExportCSV(ctx context.Context, w io.Writer, q ExportQuery) (int, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(ExportColumns); err != nil {
		return 0, err
	}
	n := 0
	err := s.eachPage(ctx, q, func(page []Subscriber) error {
		latest, err := s.latestConsents(ctx, page)
		if err != nil {
			return err
		}
		for _, sub := range page {
			c := latest[sub.ID]
			rec := []string{sub.Email, csvSafe(sub.Name), string(sub.Status), joinRegions(sub.Prefs.Regions), joinTopics(sub.Prefs.Topics),
				strings.Join(sub.Lists, ","), fmtExportTime(sub.CreatedAt), fmtExportTime(sub.UpdatedAt),
				fmtExportTime(c.At), string(c.Method), c.FormVersion, c.TextSHA256, c.IP, c.UserAgent}
			if err := cw.Write(rec); err != nil {
				return err
			}
			n++
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return n, fmt.Errorf("export csv: %w", err)
	}
	cw.Flush()
	return n, cw.Error()
}

// ExportJSON writes the subscribers selected by q as a JSON array of
// Subscriber objects, streaming, and returns how many it wrote.
func (s *Store) ExportJSON(ctx context.Context, w io.Writer, q ExportQuery) (int, error) {
	if _, err := io.WriteString(w, "["); err != nil {
		return 0, err
	}
	n := 0
	err := s.eachPage(ctx, q, func(page []Subscriber) error {
		for _, sub := range page {
			b, err := json.Marshal(sub)
			if err != nil {
				return err
			}
			sep := ",\n"
			if n == 0 {
				sep = "\n"
			}
			if _, err := io.WriteString(w, sep); err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("export json: %w", err)
	}
	_, err = io.WriteString(w, "\n]\n")
	return n, err
}

func (s *Store) eachPage(ctx context.Context, q ExportQuery, fn func([]Subscriber) error) error {
	var after int64
	for {
		page, err := s.List(ctx, ListQuery{List: q.List, Status: q.Status, AfterID: after, Limit: 1000})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		after = page[len(page)-1].ID
	}
}

func (s *Store) latestConsents(ctx context.Context, page []Subscriber) (map[int64]Consent, error) {
	ids := make([]int64, len(page))
	for i, sub := range page {
		ids[i] = sub.ID
	}
	rows, err := s.st.LatestConsents(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]Consent, len(rows))
	for id, r := range rows {
		out[id] = Consent{At: r.At, Method: r.Method, FormVersion: r.FormVersion, TextSHA256: r.TextSHA256, IP: r.IP, UserAgent: r.Agent}
	}
	return out, nil
}

func fmtExportTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}

func uncsvSafe(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@", rune(s[1])) {
		return s[1:]
	}
	return s
}

func joinRegions(rs []audience.Region) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

func joinTopics(ts []audience.Topic) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = string(t)
	}
	return strings.Join(parts, ",")
}
