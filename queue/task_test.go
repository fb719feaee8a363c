package queue

import (
	"errors"
	"slices"
	"testing"

	"github.com/hibiken/asynq"
)

func TestBatchPayloadRoundTrip(t *testing.T) {
	ids := make([]int64, 500)
	for i := range ids {
		ids[i] = int64(1000 + 3*i)
	}
	p := BatchPayload{SendID: 42, UID: "0123456789ab", Batch: 7, IDs: ids}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 16+len(p.UID)+len(ids)+2 {
		t.Errorf("500 close ids take %d bytes, want about one byte each", len(b))
	}
	var q BatchPayload
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if q.SendID != 42 || q.UID != p.UID || q.Batch != 7 || !slices.Equal(q.IDs, ids) {
		t.Errorf("round trip: %+v", q)
	}
	if _, err := (BatchPayload{IDs: []int64{3, 2}}).MarshalBinary(); err == nil {
		t.Error("unsorted ids accepted")
	}
}

func TestMalformedPayloadSkipsRetry(t *testing.T) {
	for _, b := range [][]byte{nil, {2}, {1, 0x80}, {1, 1, 1, 0, 3, 1}} {
		var p BatchPayload
		err := p.UnmarshalBinary(b)
		if err == nil {
			t.Errorf("%x decoded", b)
			continue
		}
		if !errors.Is(errPayload(TypeSendBatch, err), asynq.SkipRetry) {
			t.Errorf("malformed payload error does not wrap SkipRetry")
		}
	}
}

// FuzzBatchPayload: decoding never panics, and whatever decodes encodes
// back to the same bytes.
func FuzzBatchPayload(f *testing.F) {
	good, _ := BatchPayload{SendID: 1, UID: "abc", Batch: 2, IDs: []int64{5, 6, 900}}.MarshalBinary()
	f.Add(good)                                                                  // a valid payload
	f.Add([]byte{})                                                              // empty
	f.Add([]byte{1, 1, 1, 0, 200})                                               // count larger than the rest
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}) // overlong varint
	f.Add([]byte{0x01, 0x30, 0x30, 0x00, 0x80, 0x00})                            // 0 written in two bytes (found by fuzzing)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p BatchPayload
		if p.UnmarshalBinary(b) != nil {
			return
		}
		again, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", p, err)
		}
		if string(again) != string(b) {
			t.Fatalf("round trip changed %x into %x", b, again)
		}
	})
}
