package queue

import (
	"context"
	"fmt"
	"time"
)

// Delivered is one send as it concerns one subscriber: what a data export
// (GDPR Art. 15/20) lists as their send history.
type Delivered struct {
	SendID   int64     `json:"send_id"`
	Issue    string    `json:"issue"`
	List     string    `json:"list"`
	Variant  string    `json:"variant"`
	Status   string    `json:"status"` // queued, sending, retry, sent, skipped, failed, cancelled
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"` // of the last change
}

// DeliveryHistory lists what the ledger holds for a reader: every
// delivery, oldest send first (for `tayori subscribers show` and data
// exports).
func DeliveryHistory(ctx context.Context, ledger Ledger, subscriberID int64) ([]Delivered, error) {
	out, err := ledger.History(ctx, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("queue: delivery history of subscriber %d: %w", subscriberID, err)
	}
	return out, nil
}

// DeliveryHistory is the package function on the Service's ledger.
func (s *Service) DeliveryHistory(ctx context.Context, subscriberID int64) ([]Delivered, error) {
	return DeliveryHistory(ctx, s.ledger, subscriberID)
}
