package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

type rootErr struct{}

func (rootErr) Error() string { return "root" }

func TestDeadLetterHeadersHaveSpringEncodings(t *testing.T) {
	err := fmt.Errorf("handling: %w", rootErr{})
	d := engine.DeadLetter{
		Topic:         "orders",
		Partition:     7,
		Offset:        0x0102030405060708,
		Timestamp:     time.UnixMilli(1712620800000),
		TimestampType: engine.LogAppendTime,
		Group:         "billing",
		Err:           err,
		Attempts:      3,
		Key:           []byte("k"),
		Value:         []byte("v"),
		Headers:       []engine.Header{{"trace", []byte("t1")}, {"trace", []byte("t2")}},
	}
	got := d.RecordHeaders()
	want := []engine.Header{
		{"trace", []byte("t1")},
		{"trace", []byte("t2")},
		{"kafka_dlt-original-topic", []byte("orders")},
		{"kafka_dlt-original-partition", []byte{0, 0, 0, 7}},
		{"kafka_dlt-original-offset", []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		// 1712620800000 = 0x18EC0278800
		{"kafka_dlt-original-timestamp", []byte{0, 0, 0x01, 0x8E, 0xC0, 0x27, 0x88, 0x00}},
		{"kafka_dlt-original-timestamp-type", []byte("LogAppendTime")},
		{"kafka_dlt-original-consumer-group", []byte("billing")},
		{"kafka_dlt-exception-fqcn", []byte("*fmt.wrapError")},
		{"kafka_dlt-exception-cause-fqcn", []byte("engine_test.rootErr")},
		{"kafka_dlt-exception-message", []byte("handling: root")},
		{"inorder-attempts", []byte("3")},
	}
	if !slices.EqualFunc(got, want, headerEqual) {
		t.Fatalf("headers:\n got %s\nwant %s", fmtHeaders(got), fmtHeaders(want))
	}
	got[0].Value[0] = 'X'
	if string(d.Headers[0].Value) != "t1" {
		t.Fatal("RecordHeaders shares the original headers' slice")
	}
}

func TestDeadLetterHeadersEdgeValues(t *testing.T) {
	d := engine.DeadLetter{Topic: "t", Partition: -1, Offset: -2}
	hs := d.RecordHeaders()
	byKey := map[string][]byte{}
	for _, h := range hs {
		byKey[h.Key] = h.Value
	}
	checks := map[string][]byte{
		engine.HeaderOriginalPartition:     {0xff, 0xff, 0xff, 0xff},
		engine.HeaderOriginalOffset:        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
		engine.HeaderOriginalTimestamp:     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // zero time: -1
		engine.HeaderOriginalTimestampType: []byte("CreateTime"),
		engine.HeaderExceptionFQCN:         {},
		engine.HeaderExceptionMessage:      {},
	}
	for k, w := range checks {
		if !bytes.Equal(byKey[k], w) {
			t.Errorf("%s = %x, want %x", k, byKey[k], w)
		}
	}
	if _, ok := byKey[engine.HeaderAttempts]; ok {
		t.Error("attempts header written for Attempts 0")
	}
	if got := engine.TimestampType(5).String(); got != "NoTimestampType" {
		t.Errorf("TimestampType(5) = %q", got)
	}
}

func TestParseDeadLetterHeadersRoundTrips(t *testing.T) {
	orig := []engine.Header{{"a", []byte("1")}, {engine.HeaderOriginalTopic, []byte("first-dlq-pass")}}
	d := engine.DeadLetter{
		Topic: "in", Partition: 3, Offset: 99, Timestamp: time.UnixMilli(1234),
		TimestampType: engine.CreateTime, Group: "g", Err: errors.New("boom"), Attempts: 12,
		Headers: orig,
	}
	info, err := engine.ParseDeadLetterHeaders(d.RecordHeaders())
	if err != nil {
		t.Fatal(err)
	}
	want := engine.DeadLetterInfo{
		Topic: "in", Partition: 3, Offset: 99, Timestamp: time.UnixMilli(1234),
		TimestampType: engine.CreateTime, Group: "g", ErrType: "*errors.errorString",
		ErrCauseType: "*errors.errorString", ErrMessage: "boom", Attempts: 12, Headers: orig,
	}
	if !info.Timestamp.Equal(want.Timestamp) {
		t.Fatalf("timestamp %v, want %v", info.Timestamp, want.Timestamp)
	}
	info.Timestamp = want.Timestamp
	if fmt.Sprint(info) != fmt.Sprint(want) {
		t.Fatalf("parsed\n %+v\nwant\n %+v", info, want)
	}
}

func TestParseDeadLetterHeadersRefusesBadInput(t *testing.T) {
	good := (&engine.DeadLetter{Topic: "t", Attempts: 1}).RecordHeaders()
	with := func(key string, v []byte) []engine.Header {
		hs := slices.Clone(good)
		for i := range hs {
			if hs[i].Key == key {
				hs[i].Value = v
			}
		}
		return hs
	}
	without := func(key string) []engine.Header {
		return slices.DeleteFunc(slices.Clone(good), func(h engine.Header) bool { return h.Key == key })
	}
	cases := []struct {
		name string
		hs   []engine.Header
		key  string
	}{
		{"a 3-byte partition", with(engine.HeaderOriginalPartition, []byte{0, 0, 1}), engine.HeaderOriginalPartition},
		{"a 4-byte offset", with(engine.HeaderOriginalOffset, []byte{0, 0, 0, 1}), engine.HeaderOriginalOffset},
		{"a 9-byte timestamp", with(engine.HeaderOriginalTimestamp, make([]byte, 9)), engine.HeaderOriginalTimestamp},
		{"the enum name as timestamp type", with(engine.HeaderOriginalTimestampType, []byte("CREATE_TIME")), engine.HeaderOriginalTimestampType},
		{"attempts not decimal", with(engine.HeaderAttempts, []byte("x")), engine.HeaderAttempts},
		{"attempts zero", with(engine.HeaderAttempts, []byte("0")), engine.HeaderAttempts},
		{"no topic", without(engine.HeaderOriginalTopic), engine.HeaderOriginalTopic},
		{"no offset", without(engine.HeaderOriginalOffset), engine.HeaderOriginalOffset},
		{"no headers at all", nil, engine.HeaderOriginalTopic},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := engine.ParseDeadLetterHeaders(c.hs)
			if !errors.Is(err, engine.ErrDeadLetterHeaders) || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("err = %v, want ErrDeadLetterHeaders naming %s", err, c.key)
			}
		})
	}
}

func TestDeadLetterPartition(t *testing.T) {
	t.Run("same partition when the topic has it", func(t *testing.T) {
		if got := engine.DeadLetterPartition(5, []byte("foobar"), 6); got != 5 {
			t.Fatalf("got %d, want 5", got)
		}
	})
	t.Run("the Java partitioner's choice for the key otherwise", func(t *testing.T) {
		// Kafka's UtilsTest.testMurmur2 vectors (signed Java ints).
		vectors := map[string]int32{
			"21":                         -973932308,
			"foobar":                     -790332482,
			"a-little-bit-long-string":   -985981536,
			"a-little-bit-longer-string": -1486304829,
			"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
			"abc": 479470107,
		}
		for key, h := range vectors {
			// With MaxInt32 partitions the partition is toPositive(h)
			// itself (unless it equals MaxInt32).
			want := h & 0x7fffffff
			if got := engine.DeadLetterPartition(math.MaxInt32, []byte(key), math.MaxInt32); got != want {
				t.Errorf("key %q: got %d, want %d", key, got, want)
			}
		}
		// Java: toPositive(murmur2("foobar")) % 50 == 16.
		if got := engine.DeadLetterPartition(60, []byte("foobar"), 50); got != 16 {
			t.Errorf("foobar over 50: got %d, want 16", got)
		}
	})
	t.Run("an empty key is a key, a nil key keeps the partition modulo", func(t *testing.T) {
		if got, want := engine.DeadLetterPartition(math.MaxInt32-1, []byte{}, math.MaxInt32-1), int32(275646681); got != want {
			t.Errorf("empty key: got %d, want %d", got, want)
		}
		if got := engine.DeadLetterPartition(9, nil, 4); got != 1 {
			t.Errorf("nil key: got %d, want 1", got)
		}
		if got := engine.DeadLetterPartition(-1, nil, 4); got != 0 {
			t.Errorf("nil key, partition -1: got %d, want 0", got)
		}
	})
	t.Run("no partitions is a programmer error", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		engine.DeadLetterPartition(0, nil, 0)
	})
}

func headerEqual(a, b engine.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }

func fmtHeaders(hs []engine.Header) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "\n  %s=%x", h.Key, h.Value)
	}
	return b.String()
}
