package adaptertest

// This file is the scaffolding of the retry and dead-letter tests: a keyed
// topic whose messages say by their value how the handler treats them
// (good, transient, poison, permanent), a ledger of every handler call and
// dead-letter call on one sequence counter (the order of events, not wall
// time), and the checks: attempts, nothing lost, order per key through the
// retries, and the dead-letter topic's records and headers.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/internal/kafkatest"
)

// RetryKind says how the retry tests' handler treats a message; it is the
// first byte of the message's value.
type RetryKind byte

// The kinds of message of a retry test.
const (
	Good      RetryKind = 'G' // succeeds at once
	Transient RetryKind = 'T' // fails twice, then succeeds
	Poison    RetryKind = 'P' // always fails
	Perm      RetryKind = 'X' // fails with a permanent error (see RetryLedger.Handle)
)

// TransientFailures is how often a Transient message fails before it
// succeeds.
const TransientFailures = 2

// RetryMsg is one produced message of a retry test.
type RetryMsg struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Time      time.Time // its CreateTime, whole milliseconds
	Kind      RetryKind
}

// MixedKind is the usual mix: about 2% poison, 1% permanent, 10%
// transient, the rest good.
func MixedKind(i int) RetryKind {
	switch {
	case i%50 == 17:
		return Poison
	case i%100 == 41:
		return Perm
	case i%10 == 3:
		return Transient
	}
	return Good
}

// ProduceRetryTopic writes n records to topic: record i has key
// "key-<i mod keys>", goes to partition (i mod keys) mod the partition
// count (so a key stays on one partition), has value "<kind>-<i>" with
// kind = kindOf(i), and a CreateTime of its own. It returns the records
// with their offsets, in the order written.
func ProduceRetryTopic(ctx context.Context, tb testing.TB, c *kafkatest.Cluster, topic string, n, keys int,
	kindOf func(int) RetryKind) []RetryMsg {
	tb.Helper()
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	base := time.UnixMilli(1_700_000_000_000)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		k := i % keys
		recs[i] = &kgo.Record{
			Topic:     topic,
			Partition: int32(k % int(parts)),
			Key:       []byte("key-" + strconv.Itoa(k)),
			Value:     fmt.Appendf(nil, "%c-%d", kindOf(i), i),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		tb.Fatalf("produce to %q: %v", topic, err)
	}
	out := make([]RetryMsg, n)
	for i, r := range res {
		out[i] = RetryMsg{Partition: r.Record.Partition, Offset: r.Record.Offset, Key: string(r.Record.Key),
			Value: string(r.Record.Value), Time: r.Record.Timestamp, Kind: RetryKind(r.Record.Value[0])}
	}
	return out
}

// RetryCall is one handler or dead-letter call: its start and end on the
// ledger's sequence counter, and its error.
type RetryCall struct {
	Start, End int64
	Err        error
}

// RetryLedger records every handler call and dead-letter call of a retry
// test. Safe for concurrent use.
type RetryLedger struct {
	seq   atomic.Int64
	mu    sync.Mutex
	calls map[PO][]RetryCall
	dead  map[PO][]RetryCall
}

// NewRetryLedger returns an empty ledger.
func NewRetryLedger() *RetryLedger {
	return &RetryLedger{calls: map[PO][]RetryCall{}, dead: map[PO][]RetryCall{}}
}

// PoisonError is the handler's error for a Poison message at p/o; its text
// is what the dead-letter record's exception message must say.
func PoisonError(p int32, o int64) error { return fmt.Errorf("poison at %d/%d", p, o) }

// PermanentError is the error a Perm message at p/o fails with (before the
// adapter's Permanent wraps it).
func PermanentError(p int32, o int64) error { return fmt.Errorf("permanent at %d/%d", p, o) }

// errTransient is a Transient message's error.
var errTransient = errors.New("adaptertest: transient failure")

// Handle is one handler call of the message at p/o with value: it records
// the call's start and end and returns what the kind (value's first byte)
// says: nil for Good, errTransient for the first TransientFailures calls of
// a Transient message, PoisonError always for Poison and
// permanent(PermanentError) for Perm.
func (l *RetryLedger) Handle(p int32, o int64, value []byte, permanent func(error) error) error {
	start := l.seq.Add(1)
	l.mu.Lock()
	n := len(l.calls[PO{p, o}])
	l.mu.Unlock()
	var err error
	switch RetryKind(value[0]) {
	case Transient:
		if n < TransientFailures {
			err = errTransient
		}
	case Poison:
		err = PoisonError(p, o)
	case Perm:
		err = permanent(PermanentError(p, o))
	}
	end := l.seq.Add(1)
	l.mu.Lock()
	l.calls[PO{p, o}] = append(l.calls[PO{p, o}], RetryCall{Start: start, End: end, Err: err})
	l.mu.Unlock()
	return err
}

// DeadLetter records a dead-letter call of the message at p/o around f
// and returns f's error.
func (l *RetryLedger) DeadLetter(p int32, o int64, f func() error) error {
	start := l.seq.Add(1)
	err := f()
	end := l.seq.Add(1)
	l.mu.Lock()
	l.dead[PO{p, o}] = append(l.dead[PO{p, o}], RetryCall{Start: start, End: end, Err: err})
	l.mu.Unlock()
	return err
}

// Succeeded returns how many of msgs had a handler call that returned nil.
func (l *RetryLedger) Succeeded(msgs []RetryMsg) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range msgs {
		if slices.ContainsFunc(l.calls[PO{m.Partition, m.Offset}], func(c RetryCall) bool { return c.Err == nil }) {
			n++
		}
	}
	return n
}

// Calls returns the handler calls of the message at p/o.
func (l *RetryLedger) Calls(p int32, o int64) []RetryCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls[PO{p, o}])
}

// Count returns how many of msgs are of one of kinds.
func Count(msgs []RetryMsg, kinds ...RetryKind) int {
	n := 0
	for _, m := range msgs {
		if slices.Contains(kinds, m.Kind) {
			n++
		}
	}
	return n
}

// CheckRetries fails the test unless every message of msgs was handled
// as its kind says, in one uninterrupted run: Good once, Transient
// TransientFailures+1 times (the last call succeeded), Poison maxAttempts
// times and Perm once (every call failed); the calls of a message one after
// the other; and, for each key, the first call of a message after the last
// call of the one before it, and after the end of its first successful
// dead-letter call if the ledger recorded dead-letter calls (deadLetters:
// the test's dead-letter func went through DeadLetter).
func (l *RetryLedger) CheckRetries(tb testing.TB, msgs []RetryMsg, maxAttempts int, deadLetters bool) {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[RetryKind]int{Good: 1, Transient: TransientFailures + 1, Poison: maxAttempts, Perm: 1}
	byKey := map[string][]RetryMsg{}
	bad := 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 10 {
			tb.Errorf(format, args...)
		}
	}
	for _, m := range msgs {
		byKey[m.Key] = append(byKey[m.Key], m)
		calls := l.calls[PO{m.Partition, m.Offset}]
		if len(calls) != want[m.Kind] {
			fail("%s at %d/%d: %d handler calls, want %d", m.Value, m.Partition, m.Offset, len(calls), want[m.Kind])
			continue
		}
		for i, c := range calls {
			ok := c.Err == nil
			if wantOK := m.Kind == Good || (m.Kind == Transient && i == TransientFailures); ok != wantOK {
				fail("%s at %d/%d: call %d returned %v", m.Value, m.Partition, m.Offset, i+1, c.Err)
			}
			if i > 0 && c.Start < calls[i-1].End {
				fail("%s at %d/%d: call %d started (seq %d) before call %d ended (seq %d)",
					m.Value, m.Partition, m.Offset, i+1, c.Start, i, calls[i-1].End)
			}
		}
		dead := l.dead[PO{m.Partition, m.Offset}]
		if deadLetters && (m.Kind == Poison || m.Kind == Perm) != (len(dead) > 0) {
			fail("%s at %d/%d: %d dead-letter calls", m.Value, m.Partition, m.Offset, len(dead))
		}
		if len(dead) > 0 && dead[0].Start < calls[len(calls)-1].End {
			fail("%s at %d/%d: dead-lettered (seq %d) before its last handler call ended (seq %d)",
				m.Value, m.Partition, m.Offset, dead[0].Start, calls[len(calls)-1].End)
		}
	}
	for key, ms := range byKey {
		slices.SortFunc(ms, func(a, b RetryMsg) int { return cmp.Compare(a.Offset, b.Offset) })
		for i := 1; i < len(ms); i++ {
			prev, next := ms[i-1], ms[i]
			pc, nc := l.calls[PO{prev.Partition, prev.Offset}], l.calls[PO{next.Partition, next.Offset}]
			if len(pc) == 0 || len(nc) == 0 {
				continue // reported above
			}
			if nc[0].Start < pc[len(pc)-1].End {
				fail("key %s: %s started (seq %d) before the last call of %s ended (seq %d)",
					key, next.Value, nc[0].Start, prev.Value, pc[len(pc)-1].End)
			}
			if !deadLetters || (prev.Kind != Poison && prev.Kind != Perm) {
				continue
			}
			i := slices.IndexFunc(l.dead[PO{prev.Partition, prev.Offset}], func(c RetryCall) bool { return c.Err == nil })
			if i < 0 {
				fail("key %s: %s never dead-lettered successfully", key, prev.Value)
			} else if end := l.dead[PO{prev.Partition, prev.Offset}][i].End; nc[0].Start < end {
				fail("key %s: %s started (seq %d) before %s was dead-lettered (seq %d)",
					key, next.Value, nc[0].Start, prev.Value, end)
			}
		}
	}
	if bad > 10 {
		tb.Errorf("... %d problems in all", bad)
	}
}

// CheckRetryDeadLetters reads every record of dlq (a topic with as many
// partitions as src) and fails the test unless the records are exactly
// the Poison and Perm messages of msgs, each at least once, in the
// partition it came from, with its key and value, and Spring Kafka's
// headers: original topic src, partition, offset, timestamp, timestamp
// type, consumer group, exception type (Poison: the type of PoisonError)
// and message, and inorder-attempts (maxAttempts for Poison, 1 for Perm);
// and unless, per key, each message's first record comes after the first
// record of the key's earlier dead-lettered message (the dead-letter topic
// received them in offset order). It returns how many records it read.
func CheckRetryDeadLetters(ctx context.Context, tb testing.TB, c *kafkatest.Cluster, dlq, src, group string,
	msgs []RetryMsg, maxAttempts int) int {
	tb.Helper()
	ends, err := c.LogEnd(ctx, dlq)
	if err != nil {
		tb.Fatal(err)
	}
	total := 0
	for _, e := range ends {
		total += int(e)
	}
	recs, err := c.ReadN(ctx, dlq, total)
	if err != nil {
		tb.Fatal(err)
	}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	byPO := map[PO]RetryMsg{}
	for _, m := range msgs {
		byPO[PO{m.Partition, m.Offset}] = m
	}
	seen := map[PO]bool{}
	lastOfKey := map[string]int64{} // source offset of the key's last dead-lettered message so far
	for _, r := range recs {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		part, off := []byte(h["kafka_dlt-original-partition"]), []byte(h["kafka_dlt-original-offset"])
		if len(part) != 4 || len(off) != 8 {
			tb.Fatalf("dead-letter record %d/%d: original partition %x, offset %x", r.Partition, r.Offset, part, off)
		}
		po := PO{int32(binary.BigEndian.Uint32(part)), int64(binary.BigEndian.Uint64(off))}
		m, ok := byPO[po]
		if !ok || (m.Kind != Poison && m.Kind != Perm) {
			tb.Fatalf("dead-letter record %d/%d is %d/%d %q (kind %c): not poison or permanent",
				r.Partition, r.Offset, po.P, po.O, r.Value, m.Kind)
		}
		cause := PoisonError(po.P, po.O)
		attempts := maxAttempts
		if m.Kind == Perm {
			cause, attempts = PermanentError(po.P, po.O), 1
		}
		ts := binary.BigEndian.AppendUint64(nil, uint64(m.Time.UnixMilli()))
		want := map[string]string{
			"kafka_dlt-original-topic":          src,
			"kafka_dlt-original-timestamp":      string(ts),
			"kafka_dlt-original-timestamp-type": "CreateTime",
			"kafka_dlt-original-consumer-group": group,
			"kafka_dlt-exception-message":       cause.Error(),
			"inorder-attempts":                  strconv.Itoa(attempts),
		}
		if m.Kind == Poison {
			want["kafka_dlt-exception-fqcn"] = fmt.Sprintf("%T", cause)
		}
		for k, v := range want {
			if h[k] != v {
				tb.Errorf("dead-letter record of %s at %d/%d: header %s = %q, want %q", m.Value, po.P, po.O, k, h[k], v)
			}
		}
		if r.Partition != m.Partition || string(r.Key) != m.Key || string(r.Value) != m.Value {
			tb.Errorf("dead-letter record %d/%d: key %q value %q, want partition %d key %q value %q",
				r.Partition, r.Offset, r.Key, r.Value, m.Partition, m.Key, m.Value)
		}
		if seen[po] {
			continue // a duplicate (at least once): its first record was checked for order
		}
		seen[po] = true
		if last, ok := lastOfKey[m.Key]; ok && last > po.O {
			tb.Errorf("key %s: %s (offset %d) dead-lettered before offset %d", m.Key, m.Value, po.O, last)
		}
		lastOfKey[m.Key] = po.O
	}
	for _, m := range msgs {
		if (m.Kind == Poison || m.Kind == Perm) && !seen[PO{m.Partition, m.Offset}] {
			tb.Errorf("%s at %d/%d is not in %q", m.Value, m.Partition, m.Offset, dlq)
		}
	}
	return len(recs)
}

// SplitAtPoison splits msgs into those before the first Poison or Perm
// message of their key (that message excluded) and those from it on.
func SplitAtPoison(msgs []RetryMsg) (free, held []RetryMsg) {
	first := map[string]int64{}
	for _, m := range msgs {
		if f, ok := first[m.Key]; (m.Kind == Poison || m.Kind == Perm) && (!ok || m.Offset < f) {
			first[m.Key] = m.Offset
		}
	}
	for _, m := range msgs {
		if f, ok := first[m.Key]; ok && m.Offset >= f {
			held = append(held, m)
		} else {
			free = append(free, m)
		}
	}
	return free, held
}

// Handled returns how many of msgs had a handler call, other than those of
// Poison and Perm kind.
func (l *RetryLedger) Handled(msgs []RetryMsg) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range msgs {
		if m.Kind != Poison && m.Kind != Perm && len(l.calls[PO{m.Partition, m.Offset}]) > 0 {
			n++
		}
	}
	return n
}
