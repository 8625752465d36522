package kafkatest_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/kafkatest"
)

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProducedRecordsAreReadBackWithTheirKeysValuesAndHeaders(t *testing.T) {
	c := kafkatest.StartTest(t, kafkatest.WithTopic("t", 2))
	ctx := timeout(t)
	in := []kafkatest.Record{
		{Partition: 1, Key: []byte("a"), Value: []byte("1"), Headers: []kafkatest.Header{{"h", []byte("x")}, {"h", []byte("y")}}},
		{Partition: 0, Value: []byte("2")},
		{Partition: 1, Key: []byte("b"), Value: []byte("3")},
	}
	offs, err := c.Produce(ctx, "t", in...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(offs, []int64{0, 0, 1}) {
		t.Errorf("offsets %v, want [0 0 1]", offs)
	}
	out, err := c.Read(ctx, "t", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []kafkatest.Record{in[1], in[0], in[2]}
	want[0].Offset, want[1].Offset, want[2].Offset = 0, 0, 1
	if len(out) != 3 {
		t.Fatalf("read %d records, want 3", len(out))
	}
	for i := range want {
		g, w := out[i], want[i]
		if g.Partition != w.Partition || g.Offset != w.Offset || !bytes.Equal(g.Key, w.Key) ||
			!bytes.Equal(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
			t.Errorf("record %d: %+v, want %+v", i, g, w)
			continue
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(g.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
	if v, ok := out[1].HeaderValue("h"); !ok || string(v) != "x" {
		t.Errorf("HeaderValue(h) = %q, %v; want the first, x", v, ok)
	}
	if _, ok := out[1].HeaderValue("none"); ok {
		t.Error("HeaderValue found a header that is not there")
	}
}

func TestProduceRefusesAPartitionTheTopicLacksAndAMissingTopic(t *testing.T) {
	c := kafkatest.StartTest(t, kafkatest.WithTopic("t", 2))
	ctx := timeout(t)
	if _, err := c.Produce(ctx, "t", kafkatest.Record{Partition: 2}); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("partition 2 of 2: %v, want ErrBadArgument", err)
	}
	if _, err := c.Produce(ctx, "missing", kafkatest.Record{}); err == nil {
		t.Error("a missing topic: no error")
	}
	if err := c.CreateTopic(ctx, "missing", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Produce(ctx, "missing", kafkatest.Record{}); err != nil {
		t.Errorf("after CreateTopic: %v", err)
	}
	if err := c.CreateTopic(ctx, "t", 1); err == nil {
		t.Error("CreateTopic of an existing topic: no error")
	}
}

// A group's commits (with their metadata), its state and members, and the
// wait for a group to catch up, as a plain kgo group member makes them.
func TestCommittedGroupAndWaitCommittedSeeWhatAGroupDid(t *testing.T) {
	c := kafkatest.StartTest(t, kafkatest.WithTopic("t", 2))
	ctx := timeout(t)
	if _, ok := c.Group("g"); ok {
		t.Error("an unknown group was found")
	}
	if _, err := c.Produce(ctx, "t", kafkatest.Record{Partition: 0}, kafkatest.Record{Partition: 0}, kafkatest.Record{Partition: 1}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := c.WaitCommitted(short, "g", "t"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitCommitted with nothing committed: %v, want the context's error", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.ClientID("member-1"), kgo.DisableAutoCommit(), kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for seen := 0; seen < 3; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		seen += len(fs.Records())
	}
	g, ok := c.Group("g")
	if !ok || g.State != "Stable" || len(g.Members) != 1 || g.Members[0].ClientID != "member-1" ||
		!slices.Equal(g.Members[0].Assigned["t"], []int32{0, 1}) || g.Generation < 1 {
		t.Errorf("group %+v, %v; want Stable, member-1 owning [0 1]", g, ok)
	}
	commit := map[string]map[int32]kgo.EpochOffset{"t": {0: {Epoch: -1, Offset: 2}, 1: {Epoch: -1, Offset: 1}}}
	var cerr error
	cl.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
	if cerr != nil {
		t.Fatal(cerr)
	}
	if err := c.WaitCommitted(ctx, "g", "t"); err != nil {
		t.Fatal(err)
	}
	com, err := c.Committed(ctx, "g", "t")
	if err != nil {
		t.Fatal(err)
	}
	if com[0].Offset != 2 || com[1].Offset != 1 || len(com) != 2 {
		t.Errorf("committed %+v, want 0:2 1:1", com)
	}
	// kgo commits its member id as the metadata.
	if com[0].Metadata != g.Members[0].ID || com[0].Metadata == "" {
		t.Errorf("metadata %q, want the member id %q", com[0].Metadata, g.Members[0].ID)
	}
}

func TestAClosedClusterRefusesWork(t *testing.T) {
	c, err := kafkatest.Start(kafkatest.WithTopic("t", 1))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close() // idempotent
	if _, err := c.Produce(timeout(t), "t", kafkatest.Record{}); !errors.Is(err, kafkatest.ErrClosed) {
		t.Errorf("Produce after Close: %v, want ErrClosed", err)
	}
}

func TestStartRefusesABadTopic(t *testing.T) {
	if _, err := kafkatest.Start(kafkatest.WithTopic("t", 0)); !errors.Is(err, kafkatest.ErrBadArgument) {
		t.Errorf("0 partitions: %v, want ErrBadArgument", err)
	}
}
