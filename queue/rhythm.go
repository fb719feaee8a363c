package queue

import (
	"context"
	"time"
)

// CreateMonthlySend creates the send of the month slug ("2026-01") to
// list with the issue load finds, as the monthly schedule's tick does:
// one send per month and list, so a second call creates nothing. Package
// rhythm calls it for the console's recurring send rules.
func (s *Service) CreateMonthlySend(ctx context.Context, load IssueLoader, slug, list string, notAfter time.Time) error {
	return s.createMonthly(ctx, &Schedule{Load: load}, slug, list, nil, notAfter)
}
