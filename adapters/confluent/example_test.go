package confluent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
)

// Consume a topic with 32 handlers at once; the commits follow the
// handlers, in order, per partition.
func ExampleConsumer_Run() {
	cluster, err := kafkatest.New(kafkatest.WithTopic("orders", 4))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cluster.Produce(ctx, "orders", 1000); err != nil {
		panic(err)
	}

	c, err := confluent.NewConsumer(cluster.Addrs(), "billing", []string{"orders"},
		confluent.WithConcurrency(32),
		confluent.WithCommitInterval(100*time.Millisecond),
		confluent.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		confluent.WithConfigMap(kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky"}))
	if err != nil {
		panic(err)
	}
	var handled atomic.Int64
	go func() {
		// Stop once everything is committed.
		for {
			com, _ := cluster.Committed(ctx, "billing", "orders")
			var sum int64
			for _, cm := range com {
				sum += cm.Offset
			}
			if sum == 1000 {
				_ = c.Close()
				return
			}
			select {
			case <-ctx.Done():
				return // Run returns too
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	err = c.Run(ctx, func(ctx context.Context, msg *kafka.Message) error {
		handled.Add(1) // called concurrently
		return nil
	})
	fmt.Println("Run:", err)
	fmt.Println("handled:", handled.Load())
	// Output:
	// Run: <nil>
	// handled: 1000
}
