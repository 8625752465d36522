package franz_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
)

// Consume a topic with 32 handlers at once; the commits follow the handlers,
// in order, per partition. Run returns nil once its context ends, after it
// drained, committed and left the group.
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

	c, err := franz.NewConsumer(cluster.Addrs(), "billing", []string{"orders"},
		franz.WithConcurrency(32),
		franz.WithCommitInterval(100*time.Millisecond),
		franz.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		// TLS, SASL, the balancer, ... go through kgo's own options.
		franz.WithClientOptions(kgo.Balancers(kgo.CooperativeStickyBalancer())))
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		// Stop once everything is committed.
		for runCtx.Err() == nil {
			com, _ := cluster.Committed(ctx, "billing", "orders")
			var sum int64
			for _, cm := range com {
				sum += cm.Offset
			}
			if sum == 1000 {
				stop()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var handled atomic.Int64
	err = c.Run(runCtx, func(ctx context.Context, rec *kgo.Record) error {
		handled.Add(1) // called concurrently
		return nil
	})
	stop()
	fmt.Println("Run:", err)
	fmt.Println("handled:", handled.Load())
	// Output:
	// Run: <nil>
	// handled: 1000
}
