package kafkatest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/internal/kafkatest"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestProduceThenKafkaGoConsumesEverything(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 3))
	ctx := ctxFor(t, 30*time.Second)
	counts, err := c.Produce(ctx, "t", 300)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := c.LogEnd(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		if counts[p] != 100 || ends[p] != 100 {
			t.Fatalf("partition %d: produced %d, log end %d, want 100", p, counts[p], ends[p])
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Addrs(), Topic: "t", Partition: 1, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	seen := map[string]bool{}
	for i := range 100 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != int64(i) {
			t.Fatalf("offset %d, want %d", m.Offset, i)
		}
		seen[string(m.Value)] = true
	}
	// Partition 1 holds records 1, 4, 7, ...
	for _, v := range []string{"1", "4", "298"} {
		if !seen[v] {
			t.Errorf("value %q not read from partition 1", v)
		}
	}
}

func TestOffsetCommitMetadataRoundTrips(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 2))
	ctx := ctxFor(t, 30*time.Second)
	cl := &kafka.Client{Addr: kafka.TCP(c.Addrs()...), Timeout: 10 * time.Second}
	// Generation -1 and no member: a simple (non-group-member) commit.
	resp, err := cl.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      "g",
		GenerationID: -1,
		Topics:       map[string][]kafka.OffsetCommit{"t": {{Partition: 1, Offset: 42, Metadata: "hello"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics["t"] {
		if p.Error != nil {
			t.Fatal(p.Error)
		}
	}
	got, err := c.Committed(ctx, "g", "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[1] != (kafkatest.Commit{Offset: 42, Metadata: "hello"}) {
		t.Fatalf("committed %+v, want only partition 1 at 42 with metadata hello", got)
	}
	// And kafka-go reads it back the same.
	fr, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "g", Topics: map[string][]int{"t": {1}}})
	if err != nil {
		t.Fatal(err)
	}
	if ps := fr.Topics["t"]; len(ps) != 1 || ps[0].CommittedOffset != 42 || ps[0].Metadata != "hello" {
		t.Fatalf("kafka-go offset fetch %+v", fr.Topics)
	}
}

func TestProduceTxnLeavesMarkersAndAbortedRecords(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("tx", 2))
	ctx := ctxFor(t, 30*time.Second)
	committed, err := c.ProduceTxn(ctx, "tx", []kafkatest.Txn{{Records: 4}, {Records: 2, Abort: true}, {Records: 6}})
	if err != nil {
		t.Fatal(err)
	}
	if committed[0] != 5 || committed[1] != 5 {
		t.Fatalf("committed %v, want 5 per partition", committed)
	}
	ends, err := c.LogEnd(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	// Per partition: 5 committed + 1 aborted record + 3 markers.
	if ends[0] != 9 || ends[1] != 9 {
		t.Fatalf("log ends %v, want 9 per partition", ends)
	}
}

func TestBadArguments(t *testing.T) {
	if _, err := kafkatest.New(kafkatest.WithBrokers(0)); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("0 brokers: %v", err)
	}
	if _, err := kafkatest.New(kafkatest.WithTopic("", 1)); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("empty topic: %v", err)
	}
	c := kafkatest.Start(t)
	ctx := ctxFor(t, 10*time.Second)
	if err := c.CreateTopic(ctx, "x", 0); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("0 partitions: %v", err)
	}
	if err := c.CreateTopic(ctx, "x", 2); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "x", 2); err == nil {
		t.Error("creating an existing topic succeeded")
	}
	if _, err := c.Produce(ctx, "x", -1); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("n -1: %v", err)
	}
	if counts, err := c.Produce(ctx, "x", 0); err != nil || len(counts) != 0 {
		t.Errorf("n 0: %v %v, want nothing written and no error", counts, err)
	}
	if _, err := c.OpenTxn(ctx, "x", 0); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("OpenTxn n 0: %v", err)
	}
	c.Close()
	if _, err := c.Produce(ctx, "x", 1); !errors.Is(err, kafkatest.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

// OpenTxn leaves the last stable offset below the high watermark until the
// transaction ends.
func TestOpenTxnHoldsTheLastStableOffset(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("o", 1))
	ctx := ctxFor(t, 30*time.Second)
	if _, err := c.Produce(ctx, "o", 10); err != nil {
		t.Fatal(err)
	}
	end, err := c.OpenTxn(ctx, "o", 5, kafkatest.FirstIndex(10))
	if err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Addrs()...), Timeout: 10 * time.Second}
	latest := func(iso kafka.IsolationLevel) int64 {
		t.Helper()
		r, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{IsolationLevel: iso,
			Topics: map[string][]kafka.OffsetRequest{"o": {kafka.LastOffsetOf(0)}}})
		if err != nil || len(r.Topics["o"]) != 1 || r.Topics["o"][0].Error != nil {
			t.Fatalf("list offsets: %v %+v", err, r)
		}
		return r.Topics["o"][0].LastOffset
	}
	if hw, lso := latest(kafka.ReadUncommitted), latest(kafka.ReadCommitted); hw != 15 || lso != 10 {
		t.Fatalf("open transaction: high watermark %d, last stable %d; want 15, 10", hw, lso)
	}
	if err := end(ctx, true); err != nil {
		t.Fatal(err)
	}
	if hw, lso := latest(kafka.ReadUncommitted), latest(kafka.ReadCommitted); hw != 16 || lso != 16 {
		t.Fatalf("committed transaction: high watermark %d, last stable %d; want 16, 16 (with the marker)", hw, lso)
	}
}

func TestSecuredClusterServesItsOwnClients(t *testing.T) {
	certs, err := kafkatest.NewTLS()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []kafkatest.Option
	}{
		{"TLS", []kafkatest.Option{kafkatest.WithTLS(certs.Server, certs.Client)}},
		{"SASL PLAIN", []kafkatest.Option{kafkatest.WithSASL(kafkatest.SASLPlain, "u", "p")}},
		{"SASL SCRAM-SHA-256 over TLS", []kafkatest.Option{kafkatest.WithTLS(certs.Server, certs.Client),
			kafkatest.WithSASL(kafkatest.SASLScramSHA256, "u", "p")}},
		{"SASL SCRAM-SHA-512", []kafkatest.Option{kafkatest.WithSASL(kafkatest.SASLScramSHA512, "u", "p")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := kafkatest.Start(t, append(tc.opts, kafkatest.WithTopic("s", 2))...)
			ctx := ctxFor(t, 30*time.Second)
			if _, err := c.Produce(ctx, "s", 10); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ProduceTxn(ctx, "s", []kafkatest.Txn{{Records: 2}}); err != nil {
				t.Fatal(err)
			}
			ends, err := c.LogEnd(ctx, "s")
			if err != nil || ends[0] != 7 || ends[1] != 7 {
				t.Fatalf("log ends %v %v, want 7 each (5 + 1 + a marker)", ends, err)
			}
		})
	}
	t.Run("a plaintext client is refused by a TLS cluster", func(t *testing.T) {
		c := kafkatest.Start(t, kafkatest.WithTLS(certs.Server, certs.Client), kafkatest.WithTopic("s", 1))
		ctx := ctxFor(t, 5*time.Second)
		cl := &kafka.Client{Addr: kafka.TCP(c.Addrs()...), Timeout: 2 * time.Second}
		if _, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"s"}}); err == nil {
			t.Fatal("plaintext metadata request succeeded against a TLS cluster")
		}
	})
}

func TestBadSecurityArguments(t *testing.T) {
	certs, err := kafkatest.NewTLS()
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]kafkatest.Option{
		"unknown mechanism":  kafkatest.WithSASL("GSSAPI", "u", "p"),
		"empty user":         kafkatest.WithSASL(kafkatest.SASLPlain, "", "p"),
		"TLS without client": kafkatest.WithTLS(certs.Server, nil),
	} {
		if _, err := kafkatest.New(opt); !errors.Is(err, kafkatest.ErrBadArgument) {
			t.Errorf("%s: %v, want ErrBadArgument", name, err)
		}
	}
}

func TestRequestHookSeesClientIDs(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]bool{}
	c := kafkatest.Start(t, kafkatest.WithTopic("h", 1), kafkatest.WithRequestHook(func(_ int16, id string) {
		mu.Lock()
		ids[id] = true
		mu.Unlock()
	}))
	ctx := ctxFor(t, 10*time.Second)
	cl := &kafka.Client{Addr: kafka.TCP(c.Addrs()...), Timeout: 5 * time.Second, Transport: &kafka.Transport{ClientID: "hooked"}}
	if _, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"h"}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !ids["hooked"] {
		t.Fatalf("client ids seen %v, want hooked among them", ids)
	}
}

func TestAddPartitions(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("g", 2))
	ctx := ctxFor(t, 10*time.Second)
	if _, err := c.Produce(ctx, "g", 2); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPartitions(ctx, "g", 3); err != nil {
		t.Fatal(err)
	}
	counts, err := c.Produce(ctx, "g", 3)
	if err != nil || counts[2] != 1 {
		t.Fatalf("produce after growing: %v %v, want one record in partition 2", counts, err)
	}
	if err := c.AddPartitions(ctx, "g", 0); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Fatalf("0 partitions: %v", err)
	}
}
