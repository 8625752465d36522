package franz

// Records below the partition's fetch position (a log truncated by an
// unclean leader election, which kgo follows back, or a refetch) are
// dropped by the engine and logged once per assignment at Info, not one
// Warn per record. White-box: the embedded broker cannot truncate a log.

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/internal/engine"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRecordsBelowThePositionAreLoggedOncePerAssignment(t *testing.T) {
	var buf syncBuf
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := engine.DefaultConfig()
	cfg.Logger = log
	var handled sync.Map
	e := newEngine(cfg, func(_ context.Context, r *kgo.Record) error {
		if _, dup := handled.LoadOrStore(r.Offset, true); dup {
			t.Errorf("offset %d handled twice", r.Offset)
		}
		return nil
	})
	e.Start(context.Background())
	defer e.Stop()
	sess := e.NewSession(func(context.Context, []engine.Offset) ([]error, error) { return nil, nil })
	defer sess.Close(context.Background())
	tp := TopicPartition{Topic: "t", Partition: 0}
	part, err := sess.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{log: log, sess: sess}
	st := &pstate{tp: tp, part: part, epochs: new(epochLog), lastEpoch: -1}
	recs := func(from, to int64) []*kgo.Record {
		var out []*kgo.Record
		for o := from; o < to; o++ {
			out = append(out, &kgo.Record{Topic: "t", Offset: o, Value: []byte("v")})
		}
		return out
	}
	r.offer(st, recs(0, 100))
	r.offer(st, recs(0, 100))  // the log truncated to 0 and written again
	r.offer(st, recs(50, 150)) // half of it below the position again
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 0 {
		t.Errorf("%d Warn lines, want none:\n%s", n, out)
	}
	if n := strings.Count(out, "records below the partition's fetch position dropped"); n != 1 {
		t.Errorf("%d lines about the records below the position, want 1:\n%s", n, out)
	}
	if part.Next() != 150 {
		t.Errorf("position %d, want 150", part.Next())
	}
}
