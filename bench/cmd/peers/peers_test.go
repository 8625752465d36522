package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// Every row consumes every message of a small topic against the embedded
// broker and stops cleanly when its context ends: the table's figures come
// from consumers that work.
func TestEveryRowConsumesEveryMessage(t *testing.T) {
	const partitions, messages = 4, 400
	cl := kafkatest.Start(t, kafkatest.WithTopic(topic, partitions))
	ctx := context.Background()
	ends, err := cl.Produce(ctx, topic, messages)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute) // a hang guard
			defer cancel()
			var mu sync.Mutex
			seen := map[int32]map[int64]bool{}
			handle := func(_ context.Context, p int32, o int64) error {
				mu.Lock()
				defer mu.Unlock()
				if seen[p] == nil {
					seen[p] = map[int64]bool{}
				}
				seen[p][o] = true
				n := 0
				for _, s := range seen {
					n += len(s)
				}
				if n == messages {
					cancel()
				}
				return nil
			}
			s := churn.MemberSpec{
				Brokers: cl.Addrs(), Group: "smoke-" + r.name, Topic: topic,
				Concurrency: 4, Defaults: true, Protocol: defaultProtocol(r.name),
			}
			if err := r.consume(ctx, s, handle, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatalf("consume: %v", err)
			}
			if ctx.Err() == context.DeadlineExceeded {
				t.Fatal("not every message handled within a minute")
			}
			mu.Lock()
			defer mu.Unlock()
			for p, end := range ends {
				for o := range end {
					if !seen[p][o] {
						t.Fatalf("partition %d offset %d not handled", p, o)
					}
				}
			}
		})
	}
}

// Bad flags are refused with the flag named.
func TestParseRejectsBadFlags(t *testing.T) {
	good := config{rows: "goka", workloads: "1ms", messages: 10, partitions: 1, size: 1,
		duration: time.Second, concurrency: 1, crashMessages: 10, kills: 1, members: 1}
	if err := good.parse(); err != nil {
		t.Fatalf("good flags: %v", err)
	}
	for name, mut := range map[string]func(*config){
		"-rows":      func(c *config) { c.rows = "kafka-konsumer" },
		"-workloads": func(c *config) { c.workloads = "2ms" },
		"-messages":  func(c *config) { c.messages = 0 },
		"-members":   func(c *config) { c.members = 0 },
	} {
		c := good
		mut(&c)
		if err := c.parse(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q does not name the flag", name, err)
		}
	}
}
