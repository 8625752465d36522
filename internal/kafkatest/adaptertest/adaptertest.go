// Package adaptertest holds the test scaffolding both adapters' tests share:
// a cluster with a produced topic, hang guards, a recorder of handled
// messages, a watch that catches committed offsets going down, and the
// crash test's output file and its analysis. It knows no Kafka client: the
// adapters' tests convert their messages to (partition, offset, value).
//
// Everything here is for tests; functions that take a testing.TB fail it on
// error. Recorder and CommitWatch are safe for concurrent use.
package adaptertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// StartProduced starts an embedded cluster with topic (partitions
// partitions), returns a context that ends after d (a hang guard for the
// whole test) and produces n messages to topic under it.
func StartProduced(tb testing.TB, topic string, partitions int32, n int, d time.Duration, opts ...kafkatest.ProduceOption) (*kafkatest.Cluster, context.Context) {
	tb.Helper()
	c := kafkatest.Start(tb, kafkatest.WithTopic(topic, partitions))
	ctx := Timeout(tb, d)
	if _, err := c.Produce(ctx, topic, n, opts...); err != nil {
		tb.Fatal(err)
	}
	return c, ctx
}

// Timeout returns a context that ends after d or when the test ends.
func Timeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// WaitFor polls cond every 20ms until it holds or ctx ends, and then fails
// the test with "timed out waiting for <what>" (a hang guard, not a timing
// assertion).
func WaitFor(ctx context.Context, tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CommittedAtEnd reports whether group's commits equal the log end offsets
// of topic, and if not, why.
func CommittedAtEnd(ctx context.Context, c *kafkatest.Cluster, group, topic string) (bool, string) {
	ends, err := c.LogEnd(ctx, topic)
	if err != nil {
		return false, err.Error()
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		return false, err.Error()
	}
	for p, e := range ends {
		if com[p].Offset != e {
			return false, fmt.Sprintf("partition %d committed %d, log end %d", p, com[p].Offset, e)
		}
	}
	return true, ""
}

// Run calls run in a goroutine and returns a function that cancels its
// context and returns run's error; a run that has not returned 30s after
// the cancel is reported as an error (a hang guard). stop is idempotent and
// also called when the test ends.
func Run(tb testing.TB, run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("Run did not return 30s after cancel; its goroutines:\n%s", ourGoroutines())
			}
		})
		return err
	}
	tb.Cleanup(func() { _ = stop() })
	return stop
}

// DiscardLogger returns a logger that drops everything.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Logger returns a logger that writes warnings and errors to the test's
// output (to stderr for benchmarks).
func Logger(tb testing.TB) *slog.Logger {
	var w io.Writer = os.Stderr
	if t, ok := tb.(*testing.T); ok {
		w = t.Output()
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

var groupSeq atomic.Int64

// NextGroup returns name followed by a number unique in this process: a
// fresh consumer group for each run.
func NextGroup(name string) string { return fmt.Sprintf("%s-%d", name, groupSeq.Add(1)) }

// PO is a partition and an offset.
type PO struct {
	P int32
	O int64
}

// Recorder records handled messages: how many times each (partition,
// offset) was handled and each value. Safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	seen   map[PO]int
	values map[string]int
	total  int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{seen: map[PO]int{}, values: map[string]int{}}
}

// Add records one handling of the message at offset o of partition p.
func (r *Recorder) Add(p int32, o int64, value []byte) {
	r.mu.Lock()
	r.seen[PO{p, o}]++
	r.values[string(value)]++
	r.total++
	r.mu.Unlock()
}

// Distinct returns the number of distinct (partition, offset) handled.
func (r *Recorder) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// Count returns the number of handlings, duplicates included.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Dups returns the number of handlings beyond the first of each offset.
func (r *Recorder) Dups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total - len(r.seen)
}

// Times returns how many times offset o of partition p was handled.
func (r *Recorder) Times(p int32, o int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[PO{p, o}]
}

// Seen returns a copy of the handling count per (partition, offset).
func (r *Recorder) Seen() map[PO]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.seen)
}

// Values returns a copy of the handling count per value.
func (r *Recorder) Values() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.values)
}

// CommitWatch polls a group's committed offsets and records every time one
// goes down.
type CommitWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	rewinds []string // written by the polling goroutine
}

// WatchCommits polls group's committed offsets of topic every 10ms until
// Stop, ctx's end or the test's end, and records each decrease as
// "<prefix>partition P: NEW after OLD". Errors of a poll are ignored (the
// next poll retries).
func WatchCommits(ctx context.Context, tb testing.TB, c *kafkatest.Cluster, group, topic, prefix string) *CommitWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &CommitWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := map[int32]int64{}
		for ctx.Err() == nil {
			if com, err := c.Committed(ctx, group, topic); err == nil {
				w.mu.Lock()
				for p, cm := range com {
					if cm.Offset < last[p] {
						w.rewinds = append(w.rewinds, fmt.Sprintf("%spartition %d: %d after %d", prefix, p, cm.Offset, last[p]))
					}
					last[p] = max(last[p], cm.Offset)
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	tb.Cleanup(func() { w.Stop() })
	return w
}

// Stop ends the polling, waits for it and returns the decreases seen. It
// may be called more than once.
func (w *CommitWatch) Stop() []string {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.rewinds...)
}

// ourGoroutines returns the stacks of the goroutines running this module's
// code, for a hang's report.
func ourGoroutines() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/inorder/inorder/adapters") && !strings.Contains(g, "adaptertest.ourGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
