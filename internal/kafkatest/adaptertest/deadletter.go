package adaptertest

// This file checks what an adapter's dead-letter producer wrote: it reads
// the dead-letter topic back and decodes Spring Kafka's headers itself (an
// independent decoder: no code shared with the producer).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/internal/kafkatest"
)

// DeadLetterCase is one failed message a test dead-letters: where it came
// from, its content, and why it failed.
type DeadLetterCase struct {
	Partition int32
	Offset    int64
	Time      time.Time
	Key       []byte // nil: no key
	Value     []byte
	Headers   [][2]string // key, value
	Err       error
	Attempts  int
}

// DeadLetterCases returns two failed messages per partition of a topic of
// partitions partitions: distinct keys (one empty, and a nil one on the
// last partition), values and
// headers (repeated keys, an empty value), offsets and times; errors
// wrapping io.ErrUnexpectedEOF with fmt.Errorf; attempts 1, 2, ...
func DeadLetterCases(partitions int32) []DeadLetterCase {
	var out []DeadLetterCase
	base := time.UnixMilli(1_700_000_000_123)
	for p := range partitions {
		for j := range 2 {
			i := len(out)
			key := []byte(fmt.Sprintf("key-%d", i))
			switch i {
			case 1:
				key = []byte{}
			case 2*int(partitions) - 1: // the last partition: not in a smaller topic
				key = nil
			}
			out = append(out, DeadLetterCase{
				Partition: p,
				Offset:    int64(1000*p) + int64(j)*7 + 3,
				Time:      base.Add(time.Duration(i) * time.Second),
				Key:       key,
				Value:     []byte(fmt.Sprintf("value-%d", i)),
				Headers:   [][2]string{{"trace", fmt.Sprint(i)}, {"trace", "again"}, {"empty", ""}},
				Err:       fmt.Errorf("case %d: %w", i, io.ErrUnexpectedEOF),
				Attempts:  i + 1,
			})
		}
	}
	return out
}

// WantDeadLetterPartition is the partition rule of the dead-letter topic,
// computed independently of the adapters: orig when the topic (of n
// partitions) has it, else the Java client's partition for the key (kgo's
// StickyKeyPartitioner: murmur2, positive, modulo n), else orig modulo n.
func WantDeadLetterPartition(orig int32, key []byte, n int32) int32 {
	switch {
	case orig < n:
		return orig
	case key == nil:
		return orig % n
	}
	p := kgo.StickyKeyPartitioner(nil).ForTopic("dlq")
	return int32(p.Partition(&kgo.Record{Key: key}, int(n)))
}

// DeadLetterRecord is what a test reads back from a dead-letter topic.
type DeadLetterRecord struct {
	Partition int32
	Key       []byte
	Value     []byte
	Headers   [][2]string
}

// CheckDeadLetters reads len(cases) records of dlq on c and fails the test
// unless each case was written exactly once, to partition partitionOf(it),
// with its key (nil stays nil), value and headers unchanged and first, then
// Spring Kafka's headers byte for byte (original topic src, partition as 4
// big-endian bytes, offset and timestamp in ms as 8, timestamp type
// "CreateTime", consumer group, the error's Go type, its root cause's, its
// text) and inorder-attempts.
func CheckDeadLetters(ctx context.Context, tb testing.TB, c *kafkatest.Cluster, dlq, src, group string,
	cases []DeadLetterCase, partitionOf func(DeadLetterCase) int32) {
	tb.Helper()
	recs, err := c.ReadN(ctx, dlq, len(cases))
	if err != nil {
		tb.Fatal(err)
	}
	got := make([]DeadLetterRecord, len(recs))
	for i, r := range recs {
		got[i] = DeadLetterRecord{Partition: r.Partition, Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			got[i].Headers = append(got[i].Headers, [2]string{h.Key, string(h.Value)})
		}
	}
	if err := matchDeadLetters(got, src, group, cases, partitionOf); err != nil {
		tb.Fatal(err)
	}
}

func matchDeadLetters(got []DeadLetterRecord, src, group string, cases []DeadLetterCase, partitionOf func(DeadLetterCase) int32) error {
	if len(got) != len(cases) {
		return fmt.Errorf("%d dead-letter records, want %d", len(got), len(cases))
	}
	seen := map[int]bool{}
	for _, r := range got {
		i := caseOf(r, cases)
		if i < 0 {
			return fmt.Errorf("dead-letter record matches no case: %+v", r)
		}
		if seen[i] {
			return fmt.Errorf("case %d dead-lettered twice", i)
		}
		seen[i] = true
		cs := cases[i]
		if want := partitionOf(cs); r.Partition != want {
			return fmt.Errorf("case %d (partition %d, key %q): written to partition %d, want %d", i, cs.Partition, cs.Key, r.Partition, want)
		}
		if (r.Key == nil) != (cs.Key == nil) || !bytes.Equal(r.Key, cs.Key) {
			return fmt.Errorf("case %d: key %q (nil %v), want %q (nil %v)", i, r.Key, r.Key == nil, cs.Key, cs.Key == nil)
		}
		if !bytes.Equal(r.Value, cs.Value) {
			return fmt.Errorf("case %d: value %q, want %q", i, r.Value, cs.Value)
		}
		var root error = cs.Err
		for u := errors.Unwrap(root); u != nil; u = errors.Unwrap(root) {
			root = u
		}
		be32 := binary.BigEndian.AppendUint32(nil, uint32(cs.Partition))
		be64 := binary.BigEndian.AppendUint64(nil, uint64(cs.Offset))
		ts := binary.BigEndian.AppendUint64(nil, uint64(cs.Time.UnixMilli()))
		want := append([][2]string{}, cs.Headers...)
		want = append(want,
			[2]string{"kafka_dlt-original-topic", src},
			[2]string{"kafka_dlt-original-partition", string(be32)},
			[2]string{"kafka_dlt-original-offset", string(be64)},
			[2]string{"kafka_dlt-original-timestamp", string(ts)},
			[2]string{"kafka_dlt-original-timestamp-type", "CreateTime"},
			[2]string{"kafka_dlt-original-consumer-group", group},
			[2]string{"kafka_dlt-exception-fqcn", fmt.Sprintf("%T", cs.Err)},
			[2]string{"kafka_dlt-exception-cause-fqcn", fmt.Sprintf("%T", root)},
			[2]string{"kafka_dlt-exception-message", cs.Err.Error()},
			[2]string{"inorder-attempts", strconv.Itoa(cs.Attempts)},
		)
		if fmt.Sprintf("%q", r.Headers) != fmt.Sprintf("%q", want) {
			return fmt.Errorf("case %d: headers\n got %q\nwant %q", i, r.Headers, want)
		}
	}
	return nil
}

// caseOf returns the index of the case r's original-offset and partition
// headers name, or -1.
func caseOf(r DeadLetterRecord, cases []DeadLetterCase) int {
	var part, off []byte
	for _, h := range r.Headers {
		switch h[0] {
		case "kafka_dlt-original-partition":
			part = []byte(h[1])
		case "kafka_dlt-original-offset":
			off = []byte(h[1])
		}
	}
	if len(part) != 4 || len(off) != 8 {
		return -1
	}
	p, o := int32(binary.BigEndian.Uint32(part)), int64(binary.BigEndian.Uint64(off))
	for i, cs := range cases {
		if cs.Partition == p && cs.Offset == o {
			return i
		}
	}
	return -1
}

// SilentBroker returns the address of a listener that accepts connections
// and never answers (a broker hung or behind a black hole); it closes in
// tb.Cleanup.
func SilentBroker(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
