package brokerfault_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/internal/kafkatest/brokerfault"
)

// Run makes faults of every kind, records each with a begin and an end,
// and leaves the cluster whole: every broker back, no request cut or
// failed any more.
func TestRunBreaksAndRepairs(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	var mu sync.Mutex
	began, ended := map[string]int{}, 0
	freezes := 0
	err = brokerfault.Run(context.Background(), fake, brokerfault.Config{
		Topic: "t", Partitions: 2, Duration: 4 * time.Second,
		MinGap: 10 * time.Millisecond, MaxGap: 30 * time.Millisecond, Hold: 50 * time.Millisecond,
	}, brokerfault.Hooks{
		Begin: func(kind string) func() {
			mu.Lock()
			defer mu.Unlock()
			began[kind]++
			return func() {
				mu.Lock()
				ended++
				mu.Unlock()
			}
		},
		Freeze: func(time.Duration) bool {
			mu.Lock()
			freezes++
			mu.Unlock()
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range began {
		total += n
	}
	cats := map[string]bool{}
	for k := range began {
		for _, c := range brokerfault.Kinds {
			if len(k) >= len(c) && k[:len(c)] == c {
				cats[c] = true
			}
		}
	}
	if freezes > 0 {
		cats["freeze"] = true
	}
	if len(cats) != len(brokerfault.Kinds) || ended != total {
		t.Fatalf("kinds %v (freezes %d), %d faults begun, %d ended; want every kind, each ended", began, freezes, total, ended)
	}
	if n := len(fake.ListenAddrs()); n != 3 {
		t.Fatalf("%d brokers after Run, want 3", n)
	}
	// Nothing is broken any more: produce, fetch and commit work.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...), kgo.ConsumerGroup("g"),
		kgo.ConsumeTopics("t"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
}

// A bad config is refused, naming the field.
func TestRunRefusesBadConfig(t *testing.T) {
	err := brokerfault.Run(context.Background(), nil, brokerfault.Config{Topic: "t", Partitions: 1, MinGap: time.Second, MaxGap: time.Millisecond},
		brokerfault.Hooks{Begin: func(string) func() { return func() {} }})
	if !errors.Is(err, brokerfault.ErrBadConfig) {
		t.Fatalf("Run = %v, want ErrBadConfig", err)
	}
}
